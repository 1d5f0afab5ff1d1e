#include "anagram/core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

namespace anagram {
namespace {

// OpenBLAS's thread control, looked up at run time: LibTorch links "a BLAS", and which one the
// system resolves it to (OpenBLAS, BLIS, the reference BLAS) is only known once loaded.
using SetThreads = void (*)(int);
using GetThreads = int (*)();

SetThreads openblas_set() {
  static const auto fn =
      reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return fn;
}

GetThreads openblas_get() {
  static const auto fn =
      reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn;
}

}  // namespace

void set_cpu_threads(int threads, int blas_threads) {
  if (threads > 0) at::set_num_threads(threads);
  if (blas_threads > 0 && openblas_set()) openblas_set()(blas_threads);
}

CpuThreads cpu_threads() {
  CpuThreads t;
  t.intra_op = at::get_num_threads();
  t.blas = openblas_get() ? openblas_get()() : 0;
  return t;
}

}  // namespace anagram

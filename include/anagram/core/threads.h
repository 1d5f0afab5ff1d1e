// anagram/core/threads.h: the CPU thread pools that decide a seed's bytes, set and read together.
//
// LibTorch's intra-op pool (OpenMP) runs its own kernels; its matrix products go to the BLAS
// library the system provides (Debian: OpenBLAS through the alternatives system), whose
// pthread build keeps a pool of its own that LibTorch's setting does not reach. Both pools
// split reductions, so both change the last bits of CPU results: they are set together and
// both are recorded in metadata.json.
//
// Basic usage:
//   anagram::set_cpu_threads(1, 1);                       // one thread each: reproducible bytes
//   anagram::CpuThreads now = anagram::cpu_threads();     // what metadata records
#pragma once

namespace anagram {

struct CpuThreads {
  int intra_op = 0;  // at::get_num_threads()
  int blas = 0;      // the BLAS library's pool; 0 when it has no thread setting (not OpenBLAS)
};

// threads > 0: LibTorch's intra-op pool; blas_threads > 0: the BLAS pool (when the BLAS has
// one). 0 leaves a pool as it is.
void set_cpu_threads(int threads, int blas_threads);

CpuThreads cpu_threads();

}  // namespace anagram

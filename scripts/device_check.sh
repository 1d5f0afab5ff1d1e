#!/usr/bin/env bash
# GPU check, for a machine with CUDA and PyTorch 2.x but no package registry. Builds anagram
# against that PyTorch's LibTorch, runs the unit and CLI tests, a `gen --device cuda` smoke
# run, a CPU/CUDA comparison of the same seed, and the benchmark on both devices.
# Needs .devdeps/ (made by scripts/make_devdeps.sh on a Debian machine). Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/anagram-device-check}
mkdir -p "$out"
deps=$PWD/.devdeps
export LD_LIBRARY_PATH="$deps/lib:${LD_LIBRARY_PATH:-}"
step() { echo; echo "=== $* ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'

step "configure"
scripts/configure_pip_torch.sh build-cuda -DTORCH_CUDA_ARCH_LIST=9.0 >"$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; exit 1; }
step "build"
cmake --build build-cuda -j"$(nproc)" >"$out/build.log" 2>&1 || { grep -m20 -A5 error "$out/build.log"; exit 1; }

step "unit and CLI tests (ANAGRAM_TEST_HAS_CUDA=1)"
ANAGRAM_TEST_HAS_CUDA=1 ctest --test-dir build-cuda --output-on-failure -j8 >"$out/ctest.log" 2>&1
tail -15 "$out/ctest.log"

step "gen --device cuda smoke run, and the same seed on the CPU"
bin=build-cuda/anagram
/usr/bin/time -v $bin gen -p "dog" -p "cat" --view rot180 --device cuda --out "$out/cuda" 2>"$out/gen_cuda.log"
echo "cuda exit $?; $(grep -E 'Elapsed|Maximum resident' "$out/gen_cuda.log" | tr -s ' ' | tr '\n' ';')"
grep -E "wrote" "$out/gen_cuda.log"
$bin gen -p "dog" -p "cat" --view rot180 --device cpu --out "$out/cpu" -q
python3 - "$out" <<'PY'
import sys, numpy as np
from PIL import Image
o = sys.argv[1]
a = np.asarray(Image.open(f"{o}/cpu/sample_000/anagram.png")).astype(int)
b = np.asarray(Image.open(f"{o}/cuda/sample_000/anagram.png")).astype(int)
d = np.abs(a - b)
print(f"cpu vs cuda anagram.png: max |diff| {d.max()} levels, mean {d.mean():.3f}, "
      f"{(d > 2).mean() * 100:.2f}% of values differ by > 2")
PY

step "benchmark (tiny bundle): cuda, then cpu on this machine"
build-cuda/anagram_bench --device cuda --steps 30 --repeat 3
build-cuda/anagram_bench --device cuda --steps 30 --repeat 3 --views 4
build-cuda/anagram_bench --device cpu --steps 10 --repeat 2
echo "device check done"

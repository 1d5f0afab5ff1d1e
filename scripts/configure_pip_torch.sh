#!/usr/bin/env bash
# Configures a build against the LibTorch inside a PyTorch 2.x install (for CUDA, or a faster
# CPU build) instead of Debian's LibTorch 1.13.
# Usage: scripts/configure_pip_torch.sh BUILD_DIR [extra cmake arguments]
#   TORCH_DIR=/path/to/site-packages/torch picks the install; default: python3's torch.
# Two clashes with Debian's packages are avoided here:
# - PyTorch's TorchConfig searches system folders first, so it would take Debian's
#   libtorch.so; the torch folder goes first in CMAKE_PREFIX_PATH.
# - PyTorch ships its own fmt headers, which shadow the fmt that Debian's spdlog needs; spdlog
#   and fmt are used header-only from a private copy in .devdeps/ (scripts/make_devdeps.sh,
#   run here when this machine has the Debian packages and .devdeps/ is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:?usage: scripts/configure_pip_torch.sh BUILD_DIR [cmake arguments]}
shift
torch_dir=${TORCH_DIR:-$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
[ -f "$torch_dir/share/cmake/Torch/TorchConfig.cmake" ] ||
  { echo "error: no LibTorch CMake package under $torch_dir" >&2; exit 2; }
deps=$PWD/.devdeps
if [ ! -d "$deps" ]; then
  [ -d /usr/include/spdlog ] ||
    { echo "error: .devdeps/ is missing; make it with scripts/make_devdeps.sh on a Debian machine" >&2; exit 2; }
  bash scripts/make_devdeps.sh
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_dir;$torch_dir/share/cmake;$deps" -DANAGRAM_SPDLOG_HEADER_ONLY=ON \
  -DANAGRAM_EXTRA_INCLUDE="$deps/include" -DANAGRAM_GTEST_SOURCE="$deps/googletest" "$@"

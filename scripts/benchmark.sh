#!/usr/bin/env bash
# Prints sampler figures for a bundle (default: the bundled tiny model) on a device (default
# cpu): seconds per step, the share of a step spent outside the UNet call, peak memory.
# Usage: scripts/benchmark.sh [--bundle DIR] [--device cpu|cuda] [--steps N] [--views N]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/anagram_bench ] || scripts/setup.sh
cmake --build build --target anagram_bench -j"$(nproc)" >/dev/null
build/anagram_bench "$@"

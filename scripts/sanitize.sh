#!/usr/bin/env bash
# Builds anagram and its tests with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) into
# build-asan/ and runs the tests there. Extra arguments go to ctest, e.g. a subset:
#   scripts/sanitize.sh -R 'Request|Bundle|Views'
# LibTorch itself is not instrumented; leak checking is off (its thread pools live until exit).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANAGRAM_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_container_overflow=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" "$@"

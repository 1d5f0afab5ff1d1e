#!/usr/bin/env bash
# Builds anagram (installing what it needs) and runs every test: unit tests against golden
# values from diffusers/transformers, end-to-end runs of the CLI on the bundled model, the table
# of bad inputs and hostile bundles, the demo model's training path, a judged quality check and
# the unit tests of the scripts' Python package (with the Python set-up), the gallery page in
# headless Chromium (installed here), and (when clang is installed) a short run of each fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --build build -j"$(nproc)"  # the tests, the tools they use and the benchmark
# The demo model's tests need Python (.venv) and fonts; without them they are skipped.
scripts/setup_demo.sh >/dev/null || echo "test: the Python set-up failed; demo model tests skipped" >&2
scripts/setup_demo_objects.sh >/dev/null || echo "test: the object demo set-up failed; its training test fails" >&2
# The gallery test opens its page in headless Chromium (Debian's package); without it that part
# is skipped with a message.
if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  install_chromium() {
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium \
      >/dev/null 2>&1
  }
  install_chromium || { $sudo apt-get update -q >/dev/null 2>&1 && install_chromium; } ||
    echo "test: chromium could not be installed; the gallery's browser checks are skipped" >&2
fi
ctest --test-dir build --output-on-failure -j"$(nproc)"
# The fuzzers need clang (libFuzzer); install it where the package registry is reachable.
if ! command -v clang++ >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends clang \
    >/dev/null || echo "test: clang could not be installed; fuzzing skipped" >&2
fi
scripts/fuzz.sh "${ANAGRAM_FUZZ_SECONDS:-20}"

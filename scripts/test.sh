#!/usr/bin/env bash
# Builds anagram (installing what it needs) and runs every test: unit tests against golden
# values from diffusers/transformers, and end-to-end runs of the CLI on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"

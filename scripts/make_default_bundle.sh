#!/usr/bin/env bash
# Rebuild the bundled default model, models/tiny-if ("tiny-if-random"):
#   1. scripts/make_tiny_model.py writes a random-weight IF-architecture diffusers
#      pipeline into build-py/tiny-if-src (not committed; /build*/ is ignored);
#   2. scripts/export_if.py exports it to models/tiny-if (committed).
# Then regenerate the goldens that depend on the bundle:
#   .venv/bin/python scripts/golden_t5_tokenizer.py
#   .venv/bin/python scripts/golden_sampler.py
#
# Usage: scripts/make_default_bundle.sh     (needs .venv: scripts/setup_python.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-$root/.venv/bin/python}"
src="build-py/tiny-if-src"
"$py" scripts/make_tiny_model.py "$src"
"$py" scripts/export_if.py "$src" models/tiny-if \
  --name tiny-if-random \
  --source-name "scripts/make_tiny_model.py (random weights, fixed seeds)" \
  --description "Tiny DeepFloyd-IF-architecture model with random weights, for tests and demos: it runs the whole pipeline quickly but draws noise-like pictures." \
  --dtype float32 --device cpu
ls -l models/tiny-if

#!/usr/bin/env bash
# Rebuild the bundled default model, models/tiny-if ("tiny-if-random"), in one go:
#   1. scripts/tiny/make_tiny_model.py writes random-weight IF-architecture diffusers
#      pipelines: stage I into build-py/tiny-if-src and stage II (64 -> 256) into
#      build-py/tiny-if-ii-src (not committed; /build*/ is ignored);
#   2. scripts/export/export_if.py exports both to models/tiny-if (committed), schema 2
#      manifest;
#   3. scripts/tiny/make_tiny_clip.py writes the tiny noise-aware CLIP into the same bundle
#      and records it (and its files' sha256) in the manifest;
#   4. scripts/tools/keep_committed_modules.py puts back the committed bytes of every
#      TorchScript file whose rebuilt archive differs only in debug info (source paths and
#      line numbers of the exporting scripts), and rehashes.
# Every weight comes from a fixed seed, so a rebuild reproduces the same weights (on the
# same CPU kind: float rounding can differ between CPUs).
# Then regenerate the goldens that depend on the bundle if its weights changed, and keep
# the committed bytes of those that did not (debug info again):
#   .venv/bin/python scripts/golden/golden_t5_tokenizer.py
#   .venv/bin/python scripts/golden/golden_sampler.py
#   .venv/bin/python scripts/golden/golden_mtl.py
#   .venv/bin/python scripts/golden/golden_clip.py
#   .venv/bin/python scripts/golden/golden_stage2.py
#   .venv/bin/python scripts/tools/keep_committed_modules.py tests/golden
#
# Usage: scripts/make_default_bundle.sh     (needs .venv: scripts/setup_python.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-$root/.venv/bin/python}"
# The scripts' package (scripts/anagram_py), also where the venv has no editable install of it.
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
src="build-py/tiny-if-src"
src2="build-py/tiny-if-ii-src"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
"$py" scripts/tiny/make_tiny_model.py "$src" --stage2 "$src2"
"$py" scripts/export/export_if.py "$src" models/tiny-if --stage2 "$src2" \
  --name tiny-if-random \
  --source-name "scripts/tiny/make_tiny_model.py (random weights, fixed seeds)" \
  --stage2-source-name "scripts/tiny/make_tiny_model.py --stage2 (random weights, fixed seeds)" \
  --description "Tiny DeepFloyd-IF-architecture model with random weights, for tests and demos: stage I (64x64) and stage II (64 -> 256 super-resolution) run the whole pipeline quickly but draw noise-like pictures." \
  --dtype float32 --device cpu --threads "$OMP_NUM_THREADS"
"$py" scripts/tiny/make_tiny_clip.py --bundle models/tiny-if > /dev/null
# Stage III: the tiny x4 upscaler (docs/stage3.md); it reuses the CLIP's BPE file.
"$py" scripts/export/export_sd_upscaler.py --tiny models/tiny-if
if git -C "$root" rev-parse --git-dir > /dev/null 2>&1; then
  "$py" scripts/tools/keep_committed_modules.py models/tiny-if
fi
ls -l models/tiny-if

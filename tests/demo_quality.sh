#!/usr/bin/env bash
# CI-sized quality check of a demo model: 4 seeds of the README's pair with the default
# method, each view judged by the independent judge. Glyphs (the default): "the letter n"
# upright, "the letter z" turned 90 degrees clockwise, judged by models/demo-judge (trained
# on held-out fonts only). Objects (DATA=objects): "dog" upright, "cat" turned a half turn
# (rot180), judged by models/demo-objects-judge (trained on OpenMoji pictures only).
# Glyphs: fails (exit 1) unless the judge recognises each view's prompt in at least 3 of
# the 4 seeds, i.e. if the model stops drawing what it is asked. Objects: the committed
# object model is below the issue's bar (docs/demo_objects.md: 0 of 20 seeds), so the
# required share is 0 (MIN_SHARE overrides it; raise it to 0.75 with a model that meets
# the bar): the check then fails only if a step of the chain breaks (bundle, sampling,
# judge, or the evaluator's views disagreeing with the program's), and prints the rates.
# Usage: tests/demo_quality.sh ANAGRAM_BINARY [BUNDLE_DIR [DATA]]    (needs .venv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
# ctest counts exit 77 as skipped: no Python set-up here (scripts/setup_demo.sh makes it).
"$py" -c "import diffusers, PIL" 2>/dev/null || { echo "skipped: $py with diffusers is missing"; exit 77; }
bin=$1
data="${3:-glyphs}"
case "$data" in
  glyphs) bundle="${2:-$root/models/demo-glyphs}"; judge="$root/models/demo-judge/judge.pt"; pair=nz
          share="${MIN_SHARE:-0.75}" ;;
  objects) bundle="${2:-$root/models/demo-objects}"; judge="$root/models/demo-objects-judge/judge.pt"
           pair=dogcat; share="${MIN_SHARE:-0}" ;;
  *) echo "unknown DATA $data (glyphs or objects)" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
"$py" "$root/scripts/demo/evaluate_demo.py" --data "$data" --anagram "$bin" --bundle "$bundle" \
  --judge "$judge" --pairs "$pair" --seeds 4 --configs full --out "$work/eval" --min-share "$share"

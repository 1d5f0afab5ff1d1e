#!/usr/bin/env bash
# Keeps the demo model's training path from rotting: trains scripts/demo/train_demo.py for a
# few steps on a few pictures (and checks that --resume continues from its checkpoint),
# exports the result with scripts/export/export_if.py exactly as scripts/make_demo_bundle.sh
# does, adds a briefly trained noise-aware CLIP (scripts/demo/train_demo_clip.py --bundle)
# and a briefly trained judge (scripts/demo/train_judge.py), checks the bundle with
# scripts/tools/check_bundle.py and, when an anagram binary is given, generates a 2-step
# sample with it and judges it with scripts/demo/evaluate_demo.py (the result is not
# expected to be recognised: only that every step runs).
# DATA=objects (the second argument) does the same for the object demo model
# (scripts/anagram_py/demo/objects.py: train_demo.py, train_demo_clip.py and train_judge.py
# with --data objects).
# Usage: tests/test_train_demo.sh [ANAGRAM_BINARY [DATA]]   (needs .venv: scripts/setup_python.sh,
#        and the fonts of scripts/setup_demo.sh; for objects those of scripts/setup_demo_objects.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
# ctest counts exit 77 as skipped: no Python set-up here (scripts/setup_demo.sh makes it).
"$py" -c "import diffusers, PIL" 2>/dev/null || { echo "skipped: $py with diffusers is missing"; exit 77; }
bin="${1:-}"
data="${2:-glyphs}"
case "$data" in
  glyphs) pair=nz ;;
  objects) pair=dogcat ;;
  *) echo "unknown DATA $data (glyphs or objects)" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
step() { echo "== $*"; }

step "train_demo.py: 2 steps, then --resume to 4"
"$py" "$root/scripts/demo/train_demo.py" --data "$data" --steps 2 --num-images 48 --batch-size 4 --ckpt-every 1 \
  --preview-every 0 --log-every 1 --threads 1 --workdir "$work/train" --out "$work/src"
"$py" "$root/scripts/demo/train_demo.py" --data "$data" --steps 4 --num-images 48 --batch-size 4 --ckpt-every 2 \
  --preview-every 4 --log-every 1 --threads 1 --workdir "$work/train" --out "$work/src" --resume \
  | tee "$work/resume.log"
grep -q "resumed at step 2" "$work/resume.log"
test -f "$work/train/preview_000004.png"
test -f "$work/src/unet/config.json" && test -f "$work/src/text_encoder/config.json"

step "export_if.py (stage I only, 16x16 attention maps)"
"$py" "$root/scripts/export/export_if.py" "$work/src" "$work/bundle" --attention-resolution 16 \
  --name demo-test --dtype float32 --device cpu --threads 1 > "$work/export.log" 2>&1 \
  || { cat "$work/export.log"; exit 1; }

step "train_demo_clip.py: 2 steps, exported into the bundle"
"$py" "$root/scripts/demo/train_demo_clip.py" --data "$data" --steps 2 --num-images 48 --batch-size 8 --log-every 1 \
  --threads 1 --workdir "$work/clip" --bundle "$work/bundle" > "$work/clip.log" 2>&1 \
  || { cat "$work/clip.log"; exit 1; }
grep -q '"image_size": 32' "$work/bundle/manifest.json"

step "train_judge.py: 2 steps"
"$py" "$root/scripts/demo/train_judge.py" --data "$data" --steps 2 --num-images 64 --batch-size 8 --threads 1 \
  --out "$work/judge" > "$work/judge.log" 2>&1 || { cat "$work/judge.log"; exit 1; }

step "check_bundle.py"
"$py" "$root/scripts/tools/check_bundle.py" "$work/bundle" > "$work/check.log" 2>&1 \
  || { cat "$work/check.log"; exit 1; }

if [ -n "$bin" ]; then
  step "anagram gen (2 steps) + evaluate_demo.py on the test bundle"
  "$py" "$root/scripts/demo/evaluate_demo.py" --data "$data" --anagram "$bin" --bundle "$work/bundle" \
    --judge "$work/judge/judge.pt" --pairs "$pair" --seeds 1 --configs full --steps 2 \
    --out "$work/eval" > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; exit 1; }
  grep -q "$pair full" "$work/eval.log"
fi
echo "test_train_demo ($data): all passed"

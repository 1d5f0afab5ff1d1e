#!/usr/bin/env python3
"""Train a demo model's independent judge: a small CNN that names the glyph (or object) in a picture.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/demo/train_judge.py \
        [--data glyphs|objects] [--out models/demo-judge] [--steps 1200]

--data objects: the object model's judge (defaults: --out models/demo-objects-judge, the
seed, size and step count of scripts/anagram_py/demo/objects.py's JUDGE_DEFAULTS). It
never sees an emoji the diffusion model learns from (objects.py CLASS_EMOJI in the Noto
style): 40% of its pictures are in the OpenMoji style and 40% in the EmojiOne 2 style (the
classes' emoji and more designs of some classes, JUDGE_EXTRA_EMOJI: poodle, cat smileys,
chicks, dove, tropical fish, palm tree, taxi, ...), 20% in the Noto style but only of those
other designs (objects.judge_emoji). Same augmentations plus mirror images and partial
greying; its "other" class is emoji of no class, the classes' emoji turned a quarter or
half turn or upside down (a dog upside down is not a "dog"), backgrounds with noise and
scribbles (objects.other_pictures). Its accuracies are measured on held-out OpenMoji
pictures, on the diffusion model's own Noto emoji (which the judge never saw), and, as the
share still named as their class, on those turned. (A judge of OpenMoji alone named 7.8% of
the Noto pictures right, one of OpenMoji and EmojiOne 13.6%, most of the rest "other":
with one or two designs of a class per style it learnt the designs, not the things.)

The glyph judge (the default, below):

The judge learns from the held-out fonts only (scripts/anagram_py/demo/glyphs.py
JUDGE_FONTS, URW base35 faces that neither the diffusion model nor its CLIP ever saw), on
clean pictures with mild blur, noise and shift augmentations. Classes: the 16 glyphs the demo model draws
plus "other" (letters and digits outside the set, blank pictures, noise and scribbles), so
that a picture that shows none of the glyphs is not counted for any prompt
(glyphs.other_pictures). It is never used by sampling: only scripts/demo/evaluate_demo.py
and tests/demo_quality.sh read it. The network and its training:
scripts/anagram_py/demo/judge.py.

Writes OUT/judge.pt (TorchScript: forward(images (B,3,32,32) float in [-1,1]) -> logits
(B,17)) and OUT/judge.json (classes, input convention, training facts, accuracies on
held-out judge-font pictures and on pictures in the diffusion model's training fonts).
"""
import sys

from anagram_py.demo.judge import main

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))

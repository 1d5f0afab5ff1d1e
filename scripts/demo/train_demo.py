#!/usr/bin/env python3
"""Train a demo model: a small DeepFloyd-IF-architecture pixel diffusion model of glyphs or objects.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/demo/train_demo.py \
        [--data glyphs|objects] [--out build-py/demo-glyphs-src] [--workdir build-py/demo-train] \
        [--steps 2200] [--batch-size 32] [--device cpu|cuda] [--resume] [--num-images 20000] \
        [--widths 32,64,64]

--data picks the data module: glyphs (the default; scripts/anagram_py/demo/glyphs.py, the
models/demo-glyphs recipe described below) or objects (scripts/anagram_py/demo/objects.py:
emoji of 16 animals and things in the Noto Color Emoji style, the models/demo-objects
recipe; its defaults for --out, --workdir, --steps, --num-images, --seed and --widths are
that module's TRAIN_DEFAULTS, see scripts/make_demo_objects_bundle.sh). Everything else
below holds for both; with --data glyphs and the defaults the run is the one that made
models/demo-glyphs.

Data (scripts/anagram_py/demo/glyphs.py): --num-images pictures of the 16 glyphs of
glyphs.GLYPHS, rendered here from the TRAIN_FONTS only (the JUDGE_FONTS are held out
for the judge), 32x32, random colours, sizes, positions and stroke widths, with captions
from templates ("the letter n", "a red digit 6"); 15% of the captions are dropped to ""
so that classifier-free guidance works.

Model: diffusers UNet2DConditionModel with IF stage I's block types (ResnetDownsample,
then SimpleCrossAttn blocks with added-KV cross-attention, "text" addition embedding,
scale-shift resnets, gelu), 6 output channels (epsilon + learned-range variance), widths
(32, 64, 64) at 32, 16 and 8 pixels, conditioned on a small T5 encoder (T5 v1.1 style,
d_model 64, 2 layers) trained jointly from scratch, with the tiny bundle's SentencePiece
tokenizer (models/tiny-if/spiece.model); scripts/anagram_py/demo/diffusion.py builds both
with if_configs.stage1_unet and t5_encoder. IF's noise schedule (squaredcos_cap_v2, 1000
steps). Loss: the epsilon MSE plus the variational bound term of Nichol & Dhariwal's
hybrid loss for the variance channels (mean detached, KL in bits, t >= 1), the
interpolation being diffusers' learned_range one. Two phases: until --phase2-step the
plain epsilon MSE; from then on each sample's epsilon MSE is weighted by
clamp(1/SNR(t), 1, --max-weight), i.e. the x0 error at high noise levels counts more (the
first phase learns to denoise; with the plain loss the model hardly learns to use its
caption, because at the noise levels where the caption matters an epsilon error costs
little). AdamW, warm-up, gradient clipping, EMA of the weights (the EMA is what gets
written).

Deterministic: everything comes from --seed; the batch of step i is drawn from a
generator seeded with (seed, i), so a run resumed from a checkpoint (--resume; written
every --ckpt-every steps to WORKDIR/ckpt.pt) gives the same weights as an uninterrupted
one. Progress: one line per --log-every steps; WORKDIR/preview_NNNNNN.png shows samples
of a few prompts (30 DDPM steps, guidance 7) every --preview-every steps.

Writes OUT as a diffusers IF pipeline folder (unet/, text_encoder/, tokenizer/,
scheduler/, model_index.json), which scripts/export/export_if.py exports to a bundle
(scripts/make_demo_bundle.sh does the whole chain).
"""
import sys

from anagram_py.demo.diffusion import main

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))

#!/usr/bin/env python3
"""Export Stable Diffusion's x4 upscaler as stage III of an `anagram` bundle (docs/stage3.md).

Usage:
    PYTHONPATH=scripts .venv/bin/python scripts/export/export_sd_upscaler.py SOURCE BUNDLE
        [--dtype float32|float16|bfloat16] [--device cpu|cuda] [--image-size 1024]
    PYTHONPATH=scripts .venv/bin/python scripts/export/export_sd_upscaler.py --random-init x4 BUNDLE
    PYTHONPATH=scripts .venv/bin/python scripts/export/export_sd_upscaler.py --tiny BUNDLE

SOURCE is a local StableDiffusionUpscalePipeline folder (the save_pretrained layout of
stabilityai/stable-diffusion-x4-upscaler: unet/, vae/, text_encoder/, tokenizer/, scheduler/,
low_res_scheduler/). --random-init x4 builds the published architecture (reconstructed in
scripts/anagram_py/sd_upscaler_configs.py) with random weights; --tiny a tiny variant for tests.
Pictures made with either are noise.

BUNDLE receives stage3/ (unet.pt, text_encoder.pt, vae_decoder.pt, bpe_simple_vocab_16e6.txt.gz
and its licence; when BUNDLE already has a byte-identical bpe_simple_vocab_16e6.txt.gz at its top,
e.g. the CLIP guidance's, stage III names that file and stage3/ gets no copy) and, in manifest.json, a top-level "stage3" object plus the files' sha256 in
"files"; every other entry is kept. A folder without manifest.json gets a stage III only
manifest, which is not a complete bundle. The C++ program does not read stage III yet (it
ignores the "stage3" object), so a bundle it reads stays readable.

Every traced module is checked against eager diffusers/transformers before anything is
written (CPU float32: exactly), at --trace-size and --check-size latents, and the written files
against the traces. The VAE decoder is always float32 (the pipeline upcasts it: it overflows in
float16); float16 needs --device cuda.
"""
import sys

from anagram_py.export.sd_upscaler import main

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))

#!/usr/bin/env python3
"""Golden values of the scorer path for the C++ tests: tests/golden/clip_scorer.pt.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python scripts/golden/golden_clip_scorer.py \
        [--scorer models/tiny-clip-scorer]

Runs the TorchScript files of the scorer folder (what the C++ program loads) and checks
them against the eager tiny model rebuilt by scripts/anagram_py/tiny/clip_scorer.py.
Tensors (written with golden_io.save_tensors):
    image_u8     (2,64,64,3) uint8   smooth seeded patterns (sums of sinusoids and a blob)
    pixels       (2,3,32,32) float32 image_u8 after the preprocessing of docs/scorer.md:
                 /255, NCHW, bicubic antialiased resize to image_size, clamp to [0,1],
                 (x - mean) / std
    image_embeds (2,16) float32      image_encoder.pt(pixels)
    prompt_ids   (3,77) int64        PROMPTS with the repository's CLIP tokenizer
                                     (scripts/anagram_py/glide_clip.py BPETokenizer,
                                     models/tiny-if vocabulary)
    text_embeds  (3,16) float32      text_encoder.pt(prompt_ids)
    similarity   (2,3)  float32      cosine similarity, row = image, column = prompt
"""
import argparse
import json
import math
import os

import torch
import torch.nn.functional as F

from anagram_py import golden_io
from anagram_py.export import clip_scorer as ex
from anagram_py.paths import GOLDEN_DIR, ROOT

OUT = os.path.join(GOLDEN_DIR, "clip_scorer.pt")
PROMPTS = ["a photo of a dog", "an oil painting of a cat", "A Fox!"]
SEED = 7


def smooth_images(n=2, size=64, seed=SEED):
    """(n, size, size, 3) uint8: per channel two random plane waves plus a Gaussian blob."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64) / size,
                            torch.arange(size, dtype=torch.float64) / size, indexing="ij")
    out = torch.empty((n, size, size, 3), dtype=torch.uint8)
    for i in range(n):
        for c in range(3):
            r = torch.rand(8, generator=g, dtype=torch.float64)
            v = 0.5 + 0.25 * torch.sin(2 * math.pi * ((1 + 3 * r[0]) * xx + (3 * r[1] - 1.5) * yy) + 6.3 * r[2])
            v += 0.15 * torch.cos(2 * math.pi * (2 * r[3] * xx - (1 + 2 * r[4]) * yy) + 6.3 * r[5])
            v += 0.3 * (r[6] - 0.5) * torch.exp(-((xx - r[6]) ** 2 + (yy - r[7]) ** 2) / 0.05)
            out[i, :, :, c] = (v.clamp(0, 1) * 255).round().to(torch.uint8)
    return out


def preprocess(image_u8, size, mean, std):
    """The documented recipe (docs/scorer.md), for (B,H,W,3) uint8 -> (B,3,S,S) float32."""
    x = image_u8.to(torch.float32).div(255).permute(0, 3, 1, 2).contiguous()
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp(0, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scorer", default=os.path.join(ROOT, "models", "tiny-clip-scorer"))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    with open(os.path.join(args.scorer, "scorer.json")) as f:
        meta = json.load(f)
    image_enc = torch.jit.load(os.path.join(args.scorer, meta["image_encoder"]))
    text_enc = torch.jit.load(os.path.join(args.scorer, meta["text_encoder"]))

    image_u8 = smooth_images()
    pixels = preprocess(image_u8, meta["image_size"], meta["image_mean"], meta["image_std"])
    ids = ex.prompt_ids(PROMPTS, os.path.join(args.scorer, meta["vocab"]))
    with torch.no_grad():
        image_embeds = image_enc(pixels)
        text_embeds = text_enc(ids)
    similarity = F.normalize(image_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).t()

    if meta["name"] == "tiny-clip-random":  # cross-check with the eager model
        from anagram_py.tiny.clip_scorer import make_tiny_model
        model = make_tiny_model()
        with torch.no_grad():
            ei = model.get_image_features(pixel_values=pixels)
            et = model.get_text_features(input_ids=ids)
        assert torch.allclose(ei, image_embeds, atol=1e-5), "image: traced != eager"
        assert torch.allclose(et, text_embeds, atol=1e-5), "text: traced != eager"

    golden_io.save_tensors(args.out, {
        "image_u8": image_u8, "pixels": pixels, "image_embeds": image_embeds,
        "prompt_ids": ids, "text_embeds": text_embeds, "similarity": similarity,
    })
    for p, row in zip(PROMPTS, ids.tolist()):
        n = row.index(ex.END) + 1
        print(f"prompt {p!r}: {row[:n]}")
    print("similarity (row = image, column = prompt):")
    print(similarity)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write a tiny, randomly initialised noise-aware CLIP (GLIDE's architecture) into a bundle.

Usage:
    .venv/bin/python scripts/make_tiny_clip.py [--bundle models/tiny-if] [--bpe-vocab PATH]

Same modules, interface and export path as the real model (scripts/export_glide_clip.py
export_clip), with tiny widths: image 2 blocks x 2 heads x 8 (patch 4 on 64x64, 1000
timesteps), text 2 blocks x 2 heads x 4 over 77 tokens, embeddings of 16. The text table
has 49408 rows, exactly the BPE vocabulary (GLIDE's has 65536; ids above 49407 never occur).
The weights are meaningless but fixed by a seed, and every parameter, biases and LayerNorm
included, is random so that tests notice a mishandled one; a shared component in both
output projections makes image-text cosines positive, as the real model's are.

The tokenizer is real: bpe_simple_vocab_16e6.txt.gz from openai/glide-text2im
(glide_text2im/tokenizer/, MIT licence, originally OpenAI CLIP's, also MIT). It is read
from --bpe-vocab, else from the bundle (it is committed in models/tiny-if), else from an
installed glide_text2im. Its licence notice is written next to it.
Records the "clip" object and the files' sha256 in the bundle's manifest.json
(export_glide_clip.record_in_manifest) and prints the object.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_model as cm  # noqa: E402
import export_glide_clip as ex  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20250301
OFFSET = 2.0  # shared embedding component, see make_tiny_encoders

TINY_CLIP_CONFIG = dict(
    cm.GLIDE_CLIP_CONFIG,
    n_vocab=49408, n_embd=16,
    n_head_state_text=4, n_head_text=2, n_xf_blocks_text=2,
    n_head_state_image=8, n_head_image=2, n_xf_blocks_image=2,
)

BPE_LICENSE = """\
bpe_simple_vocab_16e6.txt.gz is copied unchanged from github.com/openai/glide-text2im
(glide_text2im/tokenizer/), which took it from github.com/openai/CLIP. Its licence:

MIT License

Copyright (c) 2021 OpenAI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def make_tiny_encoders(seed=SEED):
    """The tiny image and text encoders with their fixed random weights."""
    torch.manual_seed(seed)
    image, text = ex.build_encoders(TINY_CLIP_CONFIG)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (image, text):
            for name, p in module.named_parameters():
                if name.endswith(".g"):            # LayerNorm gains around 1
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
                elif p.dim() == 1:                 # biases, LayerNorm shifts
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
            # Random embeddings of a 16-d space tend to give negative cosines, and the
            # sampler's balancing wants s_k > 0 like the real model's (~0.2-0.3): give both
            # encoders a shared component u (output = W (g * norm(h) + b): add a rank-one
            # term to W that sends b to OFFSET * u).
            out = module.blocks["output"]
            u = torch.ones(out.f.w.shape[0]) / out.f.w.shape[0] ** 0.5
            b = out.ln.b
            out.f.w += OFFSET * torch.outer(u, b) / b.dot(b)
    return image, text


def default_bpe(bundle, explicit):
    if explicit:
        return explicit
    here = os.path.join(bundle, ex.BPE_FILE)
    return here if os.path.exists(here) else ex.find_bpe_vocab(None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=os.path.join(ROOT, "models", "tiny-if"))
    ap.add_argument("--bpe-vocab", help="bpe_simple_vocab_16e6.txt.gz to copy")
    args = ap.parse_args()

    image, text = make_tiny_encoders()
    clip = ex.export_clip(image, text, TINY_CLIP_CONFIG, args.bundle,
                          default_bpe(args.bundle, args.bpe_vocab),
                          log=lambda s: print(s, file=sys.stderr))
    with open(os.path.join(args.bundle, "bpe_simple_vocab_16e6.LICENSE"), "w") as f:
        f.write(BPE_LICENSE)
    clip["source"] = f"random weights (scripts/make_tiny_clip.py, seed {SEED}), GLIDE CLIP architecture"
    ex.record_in_manifest(args.bundle, clip, log=lambda s: print(s, file=sys.stderr))
    print(json.dumps({"clip": clip}, indent=2))


if __name__ == "__main__":
    main()

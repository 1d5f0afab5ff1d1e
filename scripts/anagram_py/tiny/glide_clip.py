"""The tiny noise-aware CLIP of models/tiny-if: GLIDE's architecture (..glide_clip) with tiny
widths and fixed random weights (scripts/tiny/make_tiny_clip.py writes it into the bundle)."""
import os

import torch

from .. import glide_clip
from ..export.glide_clip import BPE_FILE, build_encoders, find_bpe_vocab

SEED = 20250301
OFFSET = 2.0  # shared embedding component, see make_tiny_encoders

TINY_CLIP_CONFIG = dict(
    glide_clip.GLIDE_CLIP_CONFIG,
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
    image, text = build_encoders(TINY_CLIP_CONFIG)
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
    """The BPE merges file to copy: `explicit`, else the bundle's, else glide_text2im's."""
    if explicit:
        return explicit
    here = os.path.join(bundle, BPE_FILE)
    return here if os.path.exists(here) else find_bpe_vocab(None)

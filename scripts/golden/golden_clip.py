#!/usr/bin/env python3
"""Golden values of the tiny noise-aware CLIP in models/tiny-if -> tests/golden/clip_tiny.pt.

Usage: .venv/bin/python scripts/golden/golden_clip.py [--bundle models/tiny-if] [--out PATH]

Values come from the eager modules of scripts/anagram_py/tiny/glide_clip.py (same seed), and
the script checks that the bundle's clip_image_encoder.pt / clip_text_encoder.pt give the same
numbers, so the goldens and the committed TorchScript files cannot drift apart. Tokens come
from scripts/anagram_py/glide_clip.py BPETokenizer, a re-implementation of GLIDE's
SimpleTokenizer (checked equal to it; ftfy is used when installed, and these strings do not
need it).

Tensors (float32 unless noted; E = 16):
  text_utf8_<i>      uint8 (n,)    the UTF-8 bytes of prompt i (i = 0..5):
                                   "dog", "a photo of a cat", "", "café, 123!",
                                   "  A  Photo\tOF a DOG's toy ", "x y " * 40 (truncated)
  text_tokens        int64 (6,77)  [49406] + BPE ids[:75] + [49407] + zero padding
  text_lengths       int64 (6,)    ids before the padding (>= 2)
  text_emb           (6,E)         TextEmbedder(tokens, lengths), unit norm
  image              (3,3,64,64)   uniform in [-1,1] (seed 7)
  image_t            int64 (3,)    0, 500, 999
  image_emb          (3,E)         ImageEmbedder(image, t), unit norm (it maps (x+1)*127.5)
  task_x             (2,3,64,64)   X_k, the viewed noisy images (N(0,1), seed 11)
  task_tokens        int64 (2,77)  prompts "dog", "cat"
  task_lengths       int64 (2,)
  task_t             int64 ()      858: timestep of step i = 3 of 30, leading spacing
  task_step          int64 ()      3
  task_sim_published (2,2)         Anagram-MTL mtl.py calc_alignment_noise_aware:
                                   image_embeddings(X/2 + 0.5, t) @ text_embeddings^T,
                                   both renormalised; the encoder then sees (X/2+1.5)*127.5
  task_scores_published (2,)       its diagonal: s_k
  task_scores_clean  (2,)          s_k without the quirk: image_embeddings(X, t)
  task_alpha_published (2,)        s_k ^ -(1 + i/30), normalised (only when all s_k > 0)
"""
import argparse
import os

import torch

from anagram_py import glide_clip as cm
from anagram_py.export.glide_clip import BPE_FILE, IMAGE_FILE, TEXT_FILE
from anagram_py.golden_io import save_tensors
from anagram_py.paths import GOLDEN_DIR, TINY_BUNDLE
from anagram_py.tiny.glide_clip import TINY_CLIP_CONFIG, make_tiny_encoders

PROMPTS = ["dog", "a photo of a cat", "", "café, 123!", "  A  Photo\tOF a DOG's toy ", "x y " * 40]
TASK_PROMPTS = ["dog", "cat"]
TASK_STEP, TASK_T = 3, 858  # IF stage I, 30 steps, "leading": t_i = (29 - i) * 33


def published_similarity(image_emb, text_emb, images, prompts_tokens, t):
    """Anagram-MTL calc_alignment_noise_aware: n x n cosine matrix (rows images)."""
    n = images.shape[0]
    x = image_emb(images, torch.full((n,), t, dtype=torch.long))
    y = text_emb(*prompts_tokens)
    return (x / x.norm(dim=-1, keepdim=True)) @ (y / y.norm(dim=-1, keepdim=True)).T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=TINY_BUNDLE)
    ap.add_argument("--out", default=os.path.join(GOLDEN_DIR, "clip_tiny.pt"))
    args = ap.parse_args()

    image_enc, text_enc = make_tiny_encoders()
    image_emb, text_emb = cm.ImageEmbedder(image_enc).eval(), cm.TextEmbedder(text_enc).eval()
    tok = cm.BPETokenizer(os.path.join(args.bundle, BPE_FILE))
    ctx = TINY_CLIP_CONFIG["max_text_len"]
    out = {}
    with torch.no_grad():
        for i, p in enumerate(PROMPTS):
            out[f"text_utf8_{i}"] = torch.tensor(list(p.encode("utf-8")), dtype=torch.uint8)
        out["text_tokens"], out["text_lengths"] = tok.tokens_and_lengths(PROMPTS, ctx)
        out["text_emb"] = text_emb(out["text_tokens"], out["text_lengths"])

        g = torch.Generator().manual_seed(7)
        out["image"] = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
        out["image_t"] = torch.tensor([0, 500, 999])
        out["image_emb"] = image_emb(out["image"], out["image_t"])

        g = torch.Generator().manual_seed(11)
        x = torch.randn(2, 3, 64, 64, generator=g)
        task_tok = tok.tokens_and_lengths(TASK_PROMPTS, ctx)
        sim = published_similarity(image_emb, text_emb, x / 2.0 + 0.5, task_tok, TASK_T)
        s = sim.diagonal()
        out.update(task_x=x, task_tokens=task_tok[0], task_lengths=task_tok[1],
                   task_t=torch.tensor(TASK_T), task_step=torch.tensor(TASK_STEP),
                   task_sim_published=sim, task_scores_published=s.clone(),
                   task_scores_clean=published_similarity(image_emb, text_emb, x, task_tok, TASK_T).diagonal().clone())
        if (s > 0).all():
            a = s.double() ** -(1 + TASK_STEP / 30)
            out["task_alpha_published"] = (a / a.sum()).float()

        # The committed TorchScript files must give the same numbers.
        ts_i = torch.jit.load(os.path.join(args.bundle, IMAGE_FILE))
        ts_t = torch.jit.load(os.path.join(args.bundle, TEXT_FILE))
        err = max((ts_t(out["text_tokens"], out["text_lengths"]) - out["text_emb"]).abs().max().item(),
                  (ts_i(out["image"], out["image_t"]) - out["image_emb"]).abs().max().item())
        if err > 1e-6:
            raise SystemExit(f"{args.bundle}: TorchScript CLIP differs from make_tiny_clip's weights "
                             f"by {err:g}; rerun scripts/tiny/make_tiny_clip.py")
    save_tensors(args.out, out)
    print(f"wrote {args.out}: lengths {out['text_lengths'].tolist()}, task scores "
          f"{[round(v, 6) for v in s.tolist()]} (clean {[round(v, 6) for v in out['task_scores_clean'].tolist()]})")


if __name__ == "__main__":
    main()

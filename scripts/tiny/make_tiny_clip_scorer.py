#!/usr/bin/env python3
"""Write models/tiny-clip-scorer: a tiny, randomly initialised CLIP scorer for tests.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python scripts/tiny/make_tiny_clip_scorer.py [--out DIR] [--force]

A transformers CLIPModel with the real interface (49408-token OpenAI BPE vocabulary, 77
positions, OpenAI normalisation) and tiny widths: text 2 layers x 2 heads, hidden 8;
vision 32x32 pixels in 8x8 patches, 2 layers x 2 heads, hidden 32; projections to 16.
logit_scale is set to log(100) as in the released OpenAI checkpoints. Weights come from a
fixed seed; besides transformers' own initialisation, every LayerNorm weight and bias and
every linear bias is perturbed, so that a test notices one that is mishandled.
Exported with the same code as real models (scripts/anagram_py/export/clip_scorer.py
export_scorer), float32. The model itself: scripts/anagram_py/tiny/clip_scorer.py.
"""
import argparse
import json
import sys

from anagram_py.export.clip_scorer import export_scorer
from anagram_py.tiny.clip_scorer import DESCRIPTION, NAME, OUT, SEED, make_tiny_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty folder")
    args = ap.parse_args()
    model = make_tiny_model()
    source = (f"random weights (scripts/tiny/make_tiny_clip_scorer.py, seed {SEED}), "
              "transformers CLIPModel architecture")
    try:
        meta = export_scorer(model, args.out, NAME, DESCRIPTION, source, force=args.force)
    except (FileExistsError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()

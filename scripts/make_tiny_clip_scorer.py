#!/usr/bin/env python3
"""Write models/tiny-clip-scorer: a tiny, randomly initialised CLIP scorer for tests.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python scripts/make_tiny_clip_scorer.py [--out DIR] [--force]

A transformers CLIPModel with the real interface (49408-token OpenAI BPE vocabulary, 77
positions, OpenAI normalisation) and tiny widths: text 2 layers x 2 heads, hidden 32;
vision 32x32 pixels in 8x8 patches, 2 layers x 2 heads, hidden 32; projections to 16.
logit_scale is set to log(100) as in the released OpenAI checkpoints. Weights come from a
fixed seed; besides transformers' own initialisation, every LayerNorm weight and bias and
every linear bias is perturbed, so that a test notices one that is mishandled.
Exported with the same code as real models (export_clip_scorer.export_scorer), float32.
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_clip_scorer as ex  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "models", "tiny-clip-scorer")
SEED = 20250611
NAME = "tiny-clip-random"
DESCRIPTION = ("Tiny CLIP with random weights (seed %d) for tests only: its scores mean "
               "nothing" % SEED)


def tiny_config():
    from transformers import CLIPConfig
    text = dict(vocab_size=49408, max_position_embeddings=77, hidden_size=32,
                intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                hidden_act="quick_gelu")
    vision = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                  intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  hidden_act="quick_gelu")
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16,
                      logit_scale_init_value=math.log(100.0))


def make_tiny_model(seed=SEED):
    """The tiny CLIPModel (eval mode, float32) with its fixed random weights."""
    from transformers import CLIPModel
    torch.manual_seed(seed)
    model = CLIPModel(tiny_config()).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=g))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=g))
            elif isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=g))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty folder")
    args = ap.parse_args()
    model = make_tiny_model()
    source = (f"random weights (scripts/make_tiny_clip_scorer.py, seed {SEED}), "
              "transformers CLIPModel architecture")
    try:
        meta = ex.export_scorer(model, args.out, NAME, DESCRIPTION, source, force=args.force)
    except (FileExistsError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    import json
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()

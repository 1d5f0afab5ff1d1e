#!/usr/bin/env python3
"""Export a transformers CLIPModel as an `anagram score` scorer folder (docs/scorer.md).

Usage:
    .venv/bin/python scripts/export/export_clip_scorer.py MODEL_DIR_OR_HUB_ID OUT_DIR \
        [--name NAME] [--description TEXT] [--dtype float32|float16] [--force]

MODEL_DIR_OR_HUB_ID is a local folder holding a transformers CLIP checkpoint
(config.json + pytorch_model.bin or model.safetensors), e.g. a downloaded
openai/clip-vit-large-patch14 or openai/clip-vit-base-patch32. A hub id works only where
the model is already in the local Hugging Face cache: this script sets HF_HUB_OFFLINE=1 and
never downloads anything (download on a machine with network access, e.g.
`huggingface-cli download openai/clip-vit-large-patch14 --local-dir clip-l14`, and copy
the folder over).

Writes OUT_DIR/ (refused when OUT_DIR exists and is not empty, unless --force):
    image_encoder.pt   TorchScript: pixel_values float32 (B,3,S,S), resized and normalised
                       -> (B, embed_dim) float32 = CLIPModel.get_image_features
    text_encoder.pt    TorchScript: input_ids int64 (B,77), OpenAI CLIP format (49406, BPE ids,
                       49407, 0 padding) -> (B, embed_dim) float32 = get_text_features(input_ids)
                       with no attention mask
    bpe_simple_vocab_16e6.txt.gz (+ .LICENSE)   copied from models/tiny-if
    scorer.json        format, sizes, normalisation, logit_scale, sha256 and bytes of the files

Both encoders are traced (torch.jit.trace with a batch of 2) and each is checked against
the eager model before anything is written: batches of 1, 2 and 3, random pixels, and
prompts of different lengths. --dtype float16 keeps weights and arithmetic in half
precision (inputs and outputs stay float32); LibTorch 1.13 has no half kernels on the CPU,
so this needs CUDA here and the files it writes run only on a CUDA device.

The work is scripts/anagram_py/export/clip_scorer.py export_scorer(model, out_dir, ...)
(scripts/tiny/make_tiny_clip_scorer.py calls it with a tiny random model).
"""
import argparse
import json
import os
import sys

import torch

from anagram_py.export.clip_scorer import check_tokenizer, export_scorer, normalisation


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="local transformers CLIP folder (or a cached hub id)")
    ap.add_argument("out_dir")
    ap.add_argument("--name", help="scorer name (default: the model folder's name)")
    ap.add_argument("--description", help="one line (default: made from the source)")
    ap.add_argument("--source", help="what it was exported from, e.g. openai/clip-vit-large-patch14 "
                    "(default: the checkpoint's _name_or_path)")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import CLIPModel

    dtype = torch.float16 if args.dtype == "float16" else torch.float32
    device = "cpu"
    if dtype == torch.float16:
        if not torch.cuda.is_available():
            sys.exit("error: --dtype float16 needs CUDA (LibTorch/PyTorch 1.13 have no CPU "
                     "half kernels); the exported files would run only on CUDA anyway")
        device = "cuda"
    model = CLIPModel.from_pretrained(args.model, torch_dtype=torch.float32)
    source = args.source or getattr(model.config, "_name_or_path", None) or args.model
    name = args.name or os.path.basename(os.path.normpath(args.model))
    description = args.description or \
        f"CLIP {source} exported by scripts/export/export_clip_scorer.py ({args.dtype})"
    mean, std = normalisation(args.model) if os.path.isdir(args.model) else (None, None)
    if os.path.isdir(args.model):
        check_tokenizer(args.model)
    try:
        meta = export_scorer(model, args.out_dir, name, description, source, mean, std,
                             dtype=dtype, device=device, force=args.force)
    except (FileExistsError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()

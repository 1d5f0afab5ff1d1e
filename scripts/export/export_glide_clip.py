#!/usr/bin/env python3
"""Export GLIDE's noise-aware CLIP to TorchScript files inside a model bundle.

Usage:
    .venv/bin/python scripts/export/export_glide_clip.py --image-enc clip_image_enc.pt \
        --text-enc clip_text_enc.pt --bundle BUNDLE_DIR [--bpe-vocab PATH] \
        [--device cpu|cuda] [--dtype float32|float16] [--config CONFIG] [--compare-glide]

Inputs are the two GLIDE checkpoint files (plain state_dicts, GLIDE's download names
`clip/image-enc` and `clip/text-enc`). They load with strict=True into the modules of
scripts/anagram_py/glide_clip.py. Writes into BUNDLE_DIR (each file via a temporary name + rename):

    clip_image_encoder.pt   forward(image (B,3,S,S) float [-1,1], t (B,) int64) -> (B,E) float32
    clip_text_encoder.pt    forward(tokens (B,77) int64, lengths (B,) int64) -> (B,E) float32
    bpe_simple_vocab_16e6.txt.gz   the BPE merges of GLIDE's tokenizer

Both outputs are unit-normalised (z / (||z|| + 1e-12)), exactly GLIDE's
CLIPModel.image_embeddings / text_embeddings; the image encoder applies (x + 1) * 127.5 to
its input itself. When BUNDLE_DIR has a schema 2 manifest.json, its "clip" object and the
"files" entries (sha256, bytes) of the three files are written into it (other entries are
kept); a schema 1 manifest gets the "clip" object only. Prints the "clip" object (see
docs/bundle.md) on stdout either way.
The BPE file comes from --bpe-vocab, else from an installed glide_text2im package.
--compare-glide checks the eager modules against an installed glide_text2im's own CLIP.
"""
import argparse
import json
import sys

from anagram_py.export.glide_clip import (DTYPES, build_encoders, compare_with_glide,
                                          export_clip, find_bpe_vocab, load_config,
                                          load_state_dict, record_in_manifest)
from anagram_py.tolerance import ToleranceError


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-enc", required=True, help="GLIDE clip_image_enc.pt")
    ap.add_argument("--text-enc", required=True, help="GLIDE clip_text_enc.pt")
    ap.add_argument("--bundle", required=True, help="bundle folder to write into")
    ap.add_argument("--bpe-vocab", help="bpe_simple_vocab_16e6.txt.gz (default: glide_text2im's)")
    ap.add_argument("--device", default="cpu", help="device to trace on (default cpu)")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                    help="weight/compute dtype (default float32, what GLIDE computes in)")
    ap.add_argument("--config", help="GLIDE clip config (yaml/json); default GLIDE's config.yaml")
    ap.add_argument("--compare-glide", action="store_true",
                    help="also check against an installed glide_text2im (slow)")
    args = ap.parse_args()

    cfg = load_config(args.config)
    bpe = find_bpe_vocab(args.bpe_vocab)
    image_sd, text_sd = load_state_dict(args.image_enc), load_state_dict(args.text_enc)
    image_enc, text_enc = build_encoders(cfg, image_sd, text_sd)
    try:
        if args.compare_glide:
            compare_with_glide(image_enc, text_enc, image_sd, text_sd, bpe, cfg)
        clip = export_clip(image_enc, text_enc, cfg, args.bundle, bpe, args.device, args.dtype,
                           log=lambda s: print(s, file=sys.stderr))
    except ToleranceError as e:
        sys.exit(f"error: {e}")
    clip["source"] = "openai/glide-text2im clip/image-enc + clip/text-enc"
    record_in_manifest(args.bundle, clip, log=lambda s: print(s, file=sys.stderr))
    print(json.dumps({"clip": clip}, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write a tiny, randomly initialised noise-aware CLIP (GLIDE's architecture) into a bundle.

Usage:
    .venv/bin/python scripts/tiny/make_tiny_clip.py [--bundle models/tiny-if] [--bpe-vocab PATH]

Same modules, interface and export path as the real model (scripts/anagram_py/export/
glide_clip.py export_clip, as scripts/export/export_glide_clip.py uses it), with tiny
widths: image 2 blocks x 2 heads x 8 (patch 4 on 64x64, 1000 timesteps), text 2 blocks x
2 heads x 4 over 77 tokens, embeddings of 16. The text table
has 49408 rows, exactly the BPE vocabulary (GLIDE's has 65536; ids above 49407 never occur).
The weights are meaningless but fixed by a seed, and every parameter, biases and LayerNorm
included, is random so that tests notice a mishandled one; a shared component in both
output projections makes image-text cosines positive, as the real model's are.

The tokenizer is real: bpe_simple_vocab_16e6.txt.gz from openai/glide-text2im
(glide_text2im/tokenizer/, MIT licence, originally OpenAI CLIP's, also MIT). It is read
from --bpe-vocab, else from the bundle (it is committed in models/tiny-if), else from an
installed glide_text2im. Its licence notice is written next to it.
Records the "clip" object and the files' sha256 in the bundle's manifest.json
(record_in_manifest) and prints the object. The model: scripts/anagram_py/tiny/glide_clip.py.
"""
import argparse
import json
import os
import sys

from anagram_py.export.glide_clip import export_clip, record_in_manifest
from anagram_py.paths import TINY_BUNDLE
from anagram_py.tiny.glide_clip import (BPE_LICENSE, SEED, TINY_CLIP_CONFIG, default_bpe,
                                        make_tiny_encoders)
from anagram_py.tolerance import ToleranceError


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=TINY_BUNDLE)
    ap.add_argument("--bpe-vocab", help="bpe_simple_vocab_16e6.txt.gz to copy")
    args = ap.parse_args()

    image, text = make_tiny_encoders()
    try:
        clip = export_clip(image, text, TINY_CLIP_CONFIG, args.bundle,
                           default_bpe(args.bundle, args.bpe_vocab),
                           log=lambda s: print(s, file=sys.stderr))
    except ToleranceError as e:
        sys.exit(f"error: {e}")
    with open(os.path.join(args.bundle, "bpe_simple_vocab_16e6.LICENSE"), "w") as f:
        f.write(BPE_LICENSE)
    clip["source"] = (f"random weights (scripts/tiny/make_tiny_clip.py, seed {SEED}), "
                      "GLIDE CLIP architecture")
    record_in_manifest(args.bundle, clip, log=lambda s: print(s, file=sys.stderr))
    print(json.dumps({"clip": clip}, indent=2))


if __name__ == "__main__":
    main()

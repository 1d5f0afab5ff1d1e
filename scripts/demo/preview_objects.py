#!/usr/bin/env python3
"""Draw 64 training pictures of the object demo's data in each emoji style, to look at.

Usage:
    .venv/bin/python scripts/demo/preview_objects.py [OUT.png]

Writes OUT-noto.png, OUT-openmoji.png and OUT-emojione.png (default OUT:
build-py/demo-objects-preview.png): 64 pictures of scripts/anagram_py/demo/objects.py
make_dataset (seed 1, the classes each style can draw), 16 per row at 3x, and prints the
first 16 captions of each. Needs the fonts of scripts/setup_demo_objects.sh.
"""
import sys

from anagram_py.demo import objects


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    out = argv[0] if argv else "build-py/demo-objects-preview.png"
    for style in ("noto", "openmoji", "emojione"):
        imgs, labels, caps, _ = objects.make_dataset(64, style, 1,
                                                     classes=objects.style_classes(style))
        p = out.replace(".png", f"-{style}.png")
        objects.save_grid(objects.to_model(imgs), p, ncol=16, scale=3)
        print(p, caps[:16])
    return 0


if __name__ == "__main__":
    sys.exit(main())

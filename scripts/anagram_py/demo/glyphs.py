"""Glyph pictures and captions for the demo model, models/demo-glyphs: the data module of
--data glyphs (scripts/demo/: train_demo.py, train_demo_clip.py, train_judge.py, evaluate_demo.py).

Everything is rendered here with PIL from Debian font packages (scripts/setup_demo.sh
installs them); nothing is downloaded. A picture is one glyph of GLYPHS, in one font, at a
random size and position, thickened by a random stroke, in a random foreground colour on a
random background, rendered at 4x and box-filtered down to SIZE x SIZE.

Fonts are split in two disjoint sets:
  TRAIN_FONTS  DejaVu, Liberation and FreeFont faces: the diffusion model and its
               noise-aware CLIP learn from these only;
  JUDGE_FONTS  URW base35 faces: the independent judge (scripts/demo/train_judge.py)
               learns from these only, so it never saw a training picture.

Captions are lower case (IF's encode_prompt lower-cases every prompt anyway) and end with
the glyph's name, the word the sampler takes as the concept:
  "the letter n", "a letter n", "a red letter n", "the digit 6", "a blue digit 6", ...
"""
import os
import random

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

SIZE = 32
RENDER = 4 * SIZE          # supersampling canvas

# The glyphs the demo model draws. Chosen for anagram pairs a person sees at once
# (N/Z under a quarter turn, 6/9 and L/7 under a half turn, M/W and A/V upside down,
# U/C under a quarter turn) plus a few others so that the model must read its prompt.
LETTERS = "ACEHLMNSUVWZ"
DIGITS = "0679"
GLYPHS = LETTERS + DIGITS

COLOURS = {  # name -> RGB
    "red": (215, 30, 30), "green": (30, 150, 40), "blue": (30, 60, 210),
    "black": (15, 15, 15), "orange": (240, 130, 10), "purple": (130, 40, 170),
    "yellow": (245, 215, 30), "white": (245, 245, 245),
}
LIGHT_ON_DARK = ("yellow", "white")

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation",
             "/usr/share/fonts/truetype/freefont", "/usr/share/fonts/opentype/urw-base35"]
TRAIN_FONTS = [
    "dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSansCondensed.ttf", "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf",
    "dejavu/DejaVuSerifCondensed.ttf", "dejavu/DejaVuSerifCondensed-Bold.ttf",
    "liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSansNarrow-Regular.ttf", "liberation/LiberationSansNarrow-Bold.ttf",
    "liberation/LiberationSerif-Regular.ttf", "liberation/LiberationSerif-Bold.ttf",
    "liberation/LiberationMono-Regular.ttf", "liberation/LiberationMono-Bold.ttf",
    "freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf",
    "freefont/FreeSerif.ttf", "freefont/FreeSerifBold.ttf",
    "freefont/FreeMono.ttf", "freefont/FreeMonoBold.ttf",
]
JUDGE_FONTS = [
    "urw-base35/NimbusSans-Regular.otf", "urw-base35/NimbusSans-Bold.otf",
    "urw-base35/NimbusSansNarrow-Regular.otf", "urw-base35/NimbusSansNarrow-Bold.otf",
    "urw-base35/NimbusRoman-Regular.otf", "urw-base35/NimbusRoman-Bold.otf",
    "urw-base35/NimbusMonoPS-Regular.otf", "urw-base35/NimbusMonoPS-Bold.otf",
    "urw-base35/C059-Roman.otf", "urw-base35/C059-Bold.otf",
    "urw-base35/P052-Roman.otf", "urw-base35/P052-Bold.otf",
    "urw-base35/URWBookman-Light.otf", "urw-base35/URWBookman-Demi.otf",
    "urw-base35/URWGothic-Book.otf", "urw-base35/URWGothic-Demi.otf",
]
# Letters the model never draws: the judge's "something else" class learns them.
OTHER_GLYPHS = "BDFGJKPQRTXY123458"
# The data-module interface that objects.py shares (data.data_module).
CLASSES = list(GLYPHS)
TRAIN_SOURCE = TRAIN_FONTS
JUDGE_SOURCE = JUDGE_FONTS


def font_path(rel):
    for base in ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype"):
        p = os.path.join(base, rel)
        if os.path.exists(p):
            return p
    raise SystemExit(f"font {rel} not found: run scripts/setup_demo.sh (Debian packages "
                     "fonts-dejavu-core fonts-dejavu-extra fonts-liberation "
                     "fonts-freefont-ttf fonts-urw-base35)")


def glyph_word(g):
    return ("digit " if g.isdigit() else "letter ") + g.lower()


def caption(g, colour, rng):
    """A caption for glyph g drawn in `colour` (name); templates chosen by rng."""
    r = rng.random()
    if r < 0.4:
        return "the " + glyph_word(g)
    if r < 0.6:
        return "a " + glyph_word(g)
    return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {glyph_word(g)}"


def prompt_of(g):
    """The canonical prompt of glyph g (what the README and the evaluation ask for)."""
    return "the " + glyph_word(g)


def glyph_of_prompt(prompt):
    """Inverse of the captions: the glyph a prompt names (its last word), or None."""
    word = prompt.strip().split(" ")[-1].upper()
    return word if len(word) == 1 and word in GLYPHS else None


class_of_prompt = glyph_of_prompt


def all_captions():
    """Every caption the templates make: (text, glyph index, colour name or None)."""
    out = []
    for gi, g in enumerate(GLYPHS):
        out.append(("the " + glyph_word(g), gi, None))
        out.append(("a " + glyph_word(g), gi, None))
        for c in sorted(COLOURS):
            art = "an" if c[0] in "aeiou" else "a"
            out.append((f"{art} {c} {glyph_word(g)}", gi, c))
    return out


class MaskCache:
    """Tight-cropped antialiased masks (uint8, RENDER scale) of (font, glyph, stroke)."""

    def __init__(self, fonts):
        self.fonts = [ImageFont.truetype(font_path(f), 96) for f in fonts]
        self.cache = {}

    def get(self, fi, g, stroke):
        key = (fi, g, stroke)
        if key not in self.cache:
            im = Image.new("L", (3 * RENDER, 3 * RENDER), 0)
            d = ImageDraw.Draw(im)
            d.text((RENDER // 2, RENDER // 2), g, font=self.fonts[fi], fill=255,
                   stroke_width=stroke, stroke_fill=255)
            bbox = im.getbbox()
            self.cache[key] = im.crop(bbox)
        return self.cache[key]


def _jitter(rgb, rng, amount=25):
    return tuple(int(min(255, max(0, c + rng.randint(-amount, amount)))) for c in rgb)


def render(masks, fi, g, rng, colour=None):
    """One picture (SIZE, SIZE, 3) uint8 of glyph g in font index fi, and its colour name."""
    colour = colour or rng.choice(sorted(COLOURS))
    fg = _jitter(COLOURS[colour], rng)
    if colour in LIGHT_ON_DARK:
        bg = tuple(rng.randint(0, 70) for _ in range(3))
    else:
        bg = tuple(rng.randint(205, 255) for _ in range(3))
    mask = masks.get(fi, g, rng.choice((0, 2, 4)))
    h = rng.uniform(0.55, 0.82) * RENDER
    w = mask.width * h / mask.height
    if w > 0.85 * RENDER:                       # wide glyphs (M, W) fit the width
        h, w = h * 0.85 * RENDER / w, 0.85 * RENDER
    w, h = max(4, int(round(w))), max(4, int(round(h)))
    m = mask.resize((w, h), Image.BICUBIC)
    cx = RENDER / 2 + rng.uniform(-0.08, 0.08) * RENDER
    cy = RENDER / 2 + rng.uniform(-0.08, 0.08) * RENDER
    x0 = int(round(min(max(cx - w / 2, 0), RENDER - w)))
    y0 = int(round(min(max(cy - h / 2, 0), RENDER - h)))
    canvas = Image.new("L", (RENDER, RENDER), 0)
    canvas.paste(m, (x0, y0))
    a = np.asarray(canvas, dtype=np.float32)[..., None] / 255.0
    img = np.asarray(bg, np.float32) * (1 - a) + np.asarray(fg, np.float32) * a
    img = Image.fromarray(img.round().astype(np.uint8)).resize((SIZE, SIZE), Image.BOX)
    return np.asarray(img), colour


def make_dataset(n, fonts, seed, glyphs=GLYPHS, with_captions=True):
    """n pictures: uint8 tensor (n, 3, SIZE, SIZE), glyph indices (n,), captions and
    colour names (lists)."""
    rng = random.Random(seed)
    masks = MaskCache(fonts)
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    labels, captions, colours = [], [], []
    for i in range(n):
        gi = i % len(glyphs)                    # balanced classes
        fi = rng.randrange(len(fonts))
        img, colour = render(masks, fi, glyphs[gi], rng)
        images[i] = img
        labels.append(gi)
        colours.append(colour)
        if with_captions:
            captions.append(caption(glyphs[gi], colour, rng))
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(labels), captions, colours)


def other_pictures(n, seed):
    """The glyph judge's "other" class (scripts/demo/train_judge.py): out-of-set glyphs
    (OTHER_GLYPHS) in the judge fonts, blanks, noise and scribbles. uint8 (n, 3, SIZE, SIZE)."""
    rng = random.Random(seed)
    masks = MaskCache(JUDGE_FONTS)
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        kind = i % 4
        if kind < 2:
            g = OTHER_GLYPHS[rng.randrange(len(OTHER_GLYPHS))]
            img, _ = render(masks, rng.randrange(len(JUDGE_FONTS)), g, rng)
        elif kind == 2:
            bg = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
            img = bg + np.random.RandomState(rng.randrange(2**31)).randn(SIZE, SIZE, 3) * rng.uniform(0, 60)
        else:
            im = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(0, 255) for _ in range(3)))
            d = ImageDraw.Draw(im)
            for _ in range(rng.randint(1, 4)):
                pts = [(rng.randint(0, 31), rng.randint(0, 31)) for _ in range(rng.randint(2, 4))]
                d.line(pts, fill=tuple(rng.randint(0, 255) for _ in range(3)), width=rng.randint(1, 4))
            img = np.asarray(im, np.float32)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

def to_model(images_uint8):
    """uint8 (B,3,S,S) -> float in [-1, 1]."""
    return images_uint8.float() / 127.5 - 1


def save_grid(images, path, ncol=8, scale=2):
    """images: float (B,3,S,S) in [-1,1] -> PNG grid."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    b, _, s, _ = x.shape
    nrow = (b + ncol - 1) // ncol
    grid = torch.full((3, nrow * (s + 2), ncol * (s + 2)), 128, dtype=torch.uint8)
    for i in range(b):
        r, c = divmod(i, ncol)
        grid[:, r * (s + 2) + 1:r * (s + 2) + 1 + s, c * (s + 2) + 1:c * (s + 2) + 1 + s] = x[i]
    im = Image.fromarray(grid.permute(1, 2, 0).numpy())
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    im.save(path)

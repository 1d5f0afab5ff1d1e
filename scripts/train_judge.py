#!/usr/bin/env python3
"""Train the demo model's independent judge: a small CNN that names the glyph in a picture.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/train_judge.py \
        [--out models/demo-judge] [--steps 1200]

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


def augment(x, g):
    """Mild blur, noise, shift and contrast changes, as generated pictures have."""
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
    return torch.roll(x, (dy, dx), (2, 3)).clamp(-1, 1)


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
    p.add_argument("--out", default=os.path.join(ROOT, "models", "demo-judge"))
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-images", type=int, default=16000)
    p.add_argument("--seed", type=int, default=20250412)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    sys.exit(main())

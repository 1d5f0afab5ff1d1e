#!/usr/bin/env python3
"""Judge demo anagrams: how often each view shows its prompt, per method and ablation.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/evaluate_demo.py \
        [--anagram build/anagram] [--bundle models/demo-glyphs] [--judge models/demo-judge/judge.pt] \
        [--pairs nz,69,mw] [--seeds 20] [--configs baseline,full,no-antiseg,no-balance,no-rectify] \
        [--steps 30] [--out build-py/demo-eval] [--markdown FILE] [--grid FILE] \
        [--min-share 0.8] [--jobs 2]

For every pair and configuration it runs `anagram gen` once with --num-samples SEEDS
(seeds 0 .. SEEDS-1, --threads 1), then shows each view picture the program wrote
(view_K_<view>_<prompt>.png: the anagram with view K applied) to the judge
(scripts/train_judge.py; trained on held-out fonts only, never used by sampling). A view
counts as recognised when the judge's most likely class (16 glyphs + "other") is the glyph
its prompt names. Reports, per view and for "both views at once", the share of seeds with
a 95% Wilson score interval. Samples already in OUT are reused; an incomplete set is refused (delete it to redo it).

--jobs J: J `anagram gen` runs at once (the bytes do not change: each runs on one thread).

--min-share: exit 1 unless every view of every configuration run reaches that share (the
CI quality check, tests/demo_quality.sh).

Configurations: baseline (--method baseline: the mean of the views' noise estimates),
full (the multi-task method: anti-segregation + balancing + rectification), and the full
method with one technique off (no-antiseg, no-balance, no-rectify).
"""
import argparse
import concurrent.futures
import glob
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_glyphs as dg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PAIRS = {  # name -> (prompt upright, prompt of the view, view)
    "nz": ("the letter n", "the letter z", "rot90"),
    "69": ("the digit 6", "the digit 9", "rot180"),
    "mw": ("the letter m", "the letter w", "flip"),
    "uc": ("the letter u", "the letter c", "rot90"),
    "l7": ("the letter l", "the digit 7", "rot180"),
    "av": ("the letter a", "the letter v", "flip"),
    "hs": ("the letter h", "the letter s", "rot90"),
}
CONFIGS = {
    "baseline": ["--method", "baseline"],
    "full": ["--method", "mtl"],
    "no-antiseg": ["--method", "mtl", "--no-antiseg"],
    "no-balance": ["--method", "mtl", "--no-balance"],
    "no-rectify": ["--method", "mtl", "--no-rectify"],
}


def wilson(k, n, z=1.959964):
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def default_anagram():
    for c in (os.environ.get("ANAGRAM"), os.path.join(ROOT, "build", "anagram")):
        if c and os.access(c, os.X_OK):
            return c
    return "anagram"


def sample_dirs(out):
    return sorted(d for d in glob.glob(os.path.join(out, "sample_*")) if os.path.isdir(d))


def generate(args, pair, config, out):
    p1, p2, view = PAIRS[pair]
    have = [d for d in sample_dirs(out) if len(glob.glob(os.path.join(d, "view_*.png"))) == 2]
    if len(have) >= args.seeds:
        return have[:args.seeds], 0.0
    if os.path.exists(out):  # never removed here: it may hold pictures someone wants
        raise SystemExit(f"{out} holds {len(have)} of {args.seeds} complete samples; "
                         "delete it to make them again")
    cmd = [args.anagram, "gen", "--bundle", args.bundle, "--prompt", p1, "--prompt", p2,
           "--view", view, "--steps", str(args.steps), "--seed", "0",
           "--num-samples", str(args.seeds), "--threads", "1", "--out", out] + CONFIGS[config]
    t0 = time.time()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-2000:]}")
    return sample_dirs(out)[:args.seeds], time.time() - t0


def load_view(path):
    a = np.asarray(Image.open(path).convert("RGB"))
    x = torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 127.5 - 1
    if x.shape[-1] != dg.SIZE:
        x = torch.nn.functional.interpolate(x[None], size=(dg.SIZE, dg.SIZE), mode="area")[0]
    return x


def judge_sample(judge, classes, d, prompts):
    views = sorted(glob.glob(os.path.join(d, "view_*.png")))
    views = [v for v in views if not v.endswith("_64.png")]
    x = torch.stack([load_view(v) for v in views])
    with torch.no_grad():
        pred = judge(x).argmax(1).tolist()
    named = [classes[i] for i in pred]
    return [named[k] == dg.glyph_of_prompt(prompts[k]) for k in range(len(prompts))], named


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--anagram", default=default_anagram())
    p.add_argument("--bundle", default=os.path.join(ROOT, "models", "demo-glyphs"))
    p.add_argument("--judge", default=os.path.join(ROOT, "models", "demo-judge", "judge.pt"))
    p.add_argument("--pairs", default="nz,69,mw")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--configs", default="baseline,full,no-antiseg,no-balance,no-rectify")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", default=os.path.join(ROOT, "build-py", "demo-eval"))
    p.add_argument("--markdown", default=None, help="also write the table there")
    p.add_argument("--grid", default=None, help="write a picture grid PNG there")
    p.add_argument("--grid-seeds", type=int, default=6)
    p.add_argument("--min-share", type=float, default=None)
    p.add_argument("--jobs", type=int, default=1,
                   help="`anagram gen` runs at once (each on one thread: up to one per core)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    torch.set_num_threads(1)
    judge = torch.jit.load(args.judge).eval()
    with open(os.path.join(os.path.dirname(args.judge), "judge.json")) as f:
        classes = json.load(f)["classes"]
    pairs, configs = args.pairs.split(","), args.configs.split(",")
    rows, results, failed, grid_rows = [], {}, [], []
    cells_todo = [(pair, config) for pair in pairs for config in configs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        made = {pc: pool.submit(generate, args, pc[0], pc[1],
                                os.path.join(args.out, f"{pc[0]}_{pc[1]}")) for pc in cells_todo}
        made = {pc: f.result() for pc, f in made.items()}
    for pair in pairs:
        for config in configs:
            dirs, secs = made[(pair, config)]
            prompts = PAIRS[pair][:2]
            hits = np.array([judge_sample(judge, classes, d, prompts)[0] for d in dirs])
            n = len(dirs)
            k = hits.sum(0).tolist() + [int(hits.all(1).sum())]
            results[(pair, config)] = (k, n)
            cells = []
            for kk in k:
                lo, hi = wilson(kk, n)
                cells.append(f"{kk}/{n} = {kk / n:.2f} [{lo:.2f}, {hi:.2f}]")
            rows.append((pair, config, cells))
            print(f"[evaluate_demo] {pair} {config}: view 0 {cells[0]}; view 1 {cells[1]}; "
                  f"both {cells[2]}" + (f" (generated in {secs:.0f} s)" if secs else ""), flush=True)
            if args.min_share is not None and min(k[:2]) < args.min_share * n:
                failed.append(f"{pair} {config}")
            if args.grid:
                grid_rows.append((pair, config, dirs[:args.grid_seeds]))
    lines = ["| pair (view) | method | view 1 recognised | view 2 recognised | both |",
             "|---|---|---|---|---|"]
    for pair, config, cells in rows:
        p1, p2, view = PAIRS[pair]
        lines.append(f"| {p1} / {p2} ({view}) | {config} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.grid:
        make_grid(grid_rows, args.grid)
    if failed:
        print(f"[evaluate_demo] FAILED: below {args.min_share:.2f} in " + ", ".join(failed))
        return 1
    return 0


def make_grid(grid_rows, path):
    """Rows: pair x config; each cell: the anagram and its second view, 2x scale."""
    from PIL import ImageDraw
    s, pad, label_w = 64, 4, 150
    ncell = max(len(r[2]) for r in grid_rows)
    w = label_w + ncell * (2 * s + 3 * pad)
    h = len(grid_rows) * (s + pad) + pad
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    for r, (pair, config, dirs) in enumerate(grid_rows):
        y = pad + r * (s + pad)
        p1, p2, view = PAIRS[pair]
        d.text((4, y + 18), f"{pair[0].upper()}/{pair[1].upper()} {view}", fill=(0, 0, 0))
        d.text((4, y + 34), config, fill=(0, 0, 0))
        for c, sd in enumerate(dirs):
            views = sorted(v for v in glob.glob(os.path.join(sd, "view_*.png")) if not v.endswith("_64.png"))
            x = label_w + c * (2 * s + 3 * pad)
            for j, v in enumerate(views):
                im = Image.open(v).convert("RGB").resize((s, s), Image.NEAREST)
                canvas.paste(im, (x + j * (s + pad), y))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    print(f"[evaluate_demo] wrote {path}")


if __name__ == "__main__":
    sys.exit(main())

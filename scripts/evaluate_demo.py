#!/usr/bin/env python3
"""Judge demo anagrams: how often each view shows its prompt, per method and ablation.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/evaluate_demo.py \
        [--data glyphs|objects] \
        [--anagram build/anagram] [--bundle models/demo-glyphs] [--judge models/demo-judge/judge.pt] \
        [--pairs nz,69,mw] [--seeds 20] [--configs baseline,full,no-antiseg,no-balance,no-rectify] \
        [--steps 30] [--out build-py/demo-eval] [--markdown FILE] [--grid FILE] \
        [--min-share 0.8] [--jobs 2] [--segregation]

--data objects: the object model (defaults --bundle models/demo-objects, --judge
models/demo-objects-judge/judge.pt, --pairs dogcat,rabbitduck,horsebird,housetree, --out
build-py/demo-objects-eval; the judge names 16 objects + "other", scripts/demo_objects.py)
and --segregation on. A pair may name another view than its own: dogcat@flip,
dogcat@rotate_cw.

--segregation: also measures how often the two concepts are drawn in separate halves of
the picture (the failure anti-segregation exists for). For each split of the anagram into
two halves (top/bottom and left/right), each half alone is kept (the other filled with the
picture's mean border colour), each view is applied, and the judge gives the probability
of that view's concept, r_k(half). The sample's segregation score is the largest, over
splits and the two ways of assigning halves, of min(r_1(A) - r_1(B), r_2(B) - r_2(A)),
or 0 if that is negative: concept 1 seen in half A and not in B while concept 2 is seen in B
and not in A. A sample
counts as segregated when the score is at least 0.5; the table gives the share of
segregated samples (Wilson interval) and the mean score.

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
import demo_glyphs as dg  # noqa: E402  (main() rebinds dg to the --data module)

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
GLYPH_PAIRS = PAIRS
OBJECT_PAIRS = {  # name -> (prompt upright, prompt of the view, view)
    "dogcat": ("dog", "cat", "rot180"),
    "rabbitduck": ("rabbit", "duck", "rotate_cw"),
    "horsebird": ("horse", "bird", "flip"),
    "housetree": ("house", "tree", "flip"),
    "penguinowl": ("penguin", "owl", "rot180"),
    "snailfish": ("snail", "fish", "rotate_cw"),
    "carrocket": ("car", "rocket", "rotate_cw"),
}
OBJECT_DEFAULTS = dict(bundle="models/demo-objects", judge="models/demo-objects-judge/judge.pt",
                       pairs="dogcat,rabbitduck,horsebird,housetree",
                       out="build-py/demo-objects-eval")
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


def pair_spec(spec):
    """"name" or "name@view" -> (prompt 1, prompt 2, view)."""
    name, _, view = spec.partition("@")
    if name not in PAIRS:
        raise SystemExit(f"unknown pair {name!r}; known: {', '.join(PAIRS)}")
    p1, p2, own = PAIRS[name]
    return p1, p2, view or own


def generate(args, pair, config, out):
    p1, p2, view = pair_spec(pair)
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
    return [named[k] == dg.class_of_prompt(prompts[k]) for k in range(len(prompts))], named


def apply_view(x, view):
    """A view of the program, on (..., H, W) tensors (the ones the evaluation uses)."""
    if view == "identity":
        return x
    if view in ("rot180", "rotate_180"):
        return x.flip(-2, -1)
    if view in ("flip", "vflip", "upside_down"):
        return x.flip(-2)
    if view in ("rot90", "rotate_cw", "cw", "rotate_90"):
        return x.transpose(-2, -1).flip(-1)       # a quarter turn clockwise
    if view in ("rotate_ccw", "rot270", "ccw"):
        return x.transpose(-2, -1).flip(-2)
    raise SystemExit(f"--segregation: view {view!r} is not supported")


def segregation_score(judge, classes, d, prompts, view):
    """The sample's segregation score (see the module's docstring) and the judge's
    probabilities r[k][half] for the best split."""
    anagram = load_view(os.path.join(d, "anagram.png"))            # (3, S, S)
    # the view pictures the program wrote must be this anagram under the views
    views = sorted(v for v in glob.glob(os.path.join(d, "view_*.png")) if not v.endswith("_64.png"))
    assert torch.allclose(apply_view(anagram, view), load_view(views[1]), atol=1e-6), \
        f"{d}: the evaluation's {view} differs from the program's"
    s = anagram.shape[-1]
    border = torch.cat([anagram[:, 0], anagram[:, -1], anagram[:, :, 0], anagram[:, :, -1]], 1)
    fill = border.mean(1).view(3, 1, 1)
    masks = {"top": torch.zeros(s, s, dtype=torch.bool), "left": torch.zeros(s, s, dtype=torch.bool)}
    masks["top"][: s // 2] = True
    masks["left"][:, : s // 2] = True
    ids = [classes.index(dg.class_of_prompt(p)) for p in prompts]
    best, best_r = -1.0, None
    for split, m in masks.items():
        halves = torch.stack([torch.where(m, anagram, fill), torch.where(~m, anagram, fill)])
        pics = torch.stack([halves, apply_view(halves, view)], 0)   # (view k, half, 3, S, S)
        with torch.no_grad():
            prob = judge(pics.reshape(-1, 3, s, s)).softmax(1).reshape(2, 2, -1)
        r = [[prob[k, h, ids[k]].item() for h in range(2)] for k in range(2)]
        for a, b in ((0, 1), (1, 0)):
            score = min(r[0][a] - r[0][b], r[1][b] - r[1][a])
            if score > best:
                best, best_r = score, (split, r)
    return max(0.0, best), best_r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default="glyphs", help="glyphs (default) or objects")
    p.add_argument("--anagram", default=default_anagram())
    p.add_argument("--bundle", default=None, help="default: models/demo-glyphs (glyphs)")
    p.add_argument("--judge", default=None, help="default: models/demo-judge/judge.pt (glyphs)")
    p.add_argument("--pairs", default=None, help="default: nz,69,mw (glyphs)")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--configs", default="baseline,full,no-antiseg,no-balance,no-rectify")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", default=None, help="default: build-py/demo-eval (glyphs)")
    p.add_argument("--markdown", default=None, help="also write the table there")
    p.add_argument("--grid", default=None, help="write a picture grid PNG there")
    p.add_argument("--grid-seeds", type=int, default=6)
    p.add_argument("--sheet", default=None,
                   help="write the sheets (sheet.png) of the first cell's seeds 0-3, 2x2, there "
                        "(the README's picture)")
    p.add_argument("--min-share", type=float, default=None)
    p.add_argument("--jobs", type=int, default=1,
                   help="`anagram gen` runs at once (each on one thread: up to one per core)")
    p.add_argument("--segregation", action="store_true", default=None,
                   help="also measure segregation (default: on for objects, off for glyphs)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    global dg, PAIRS
    if args.data == "objects":
        import demo_objects
        dg, PAIRS, defaults = demo_objects, OBJECT_PAIRS, OBJECT_DEFAULTS
    elif args.data == "glyphs":
        PAIRS = GLYPH_PAIRS
        defaults = dict(bundle="models/demo-glyphs", judge="models/demo-judge/judge.pt",
                        pairs="nz,69,mw", out="build-py/demo-eval")
    else:
        p.error("--data: glyphs or objects")
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value if key == "pairs" else os.path.join(ROOT, value))
    if args.segregation is None:
        args.segregation = args.data == "objects"
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
            p1, p2, view = pair_spec(pair)
            prompts = (p1, p2)
            hits = np.array([judge_sample(judge, classes, d, prompts)[0] for d in dirs])
            n = len(dirs)
            k = hits.sum(0).tolist() + [int(hits.all(1).sum())]
            results[(pair, config)] = (k, n)
            cells = []
            for kk in k:
                lo, hi = wilson(kk, n)
                cells.append(f"{kk}/{n} = {kk / n:.2f} [{lo:.2f}, {hi:.2f}]")
            if args.segregation:
                scores = [segregation_score(judge, classes, d, prompts, view)[0] for d in dirs]
                seg = sum(sc >= 0.5 for sc in scores)
                lo, hi = wilson(seg, n)
                cells.append(f"{seg}/{n} = {seg / n:.2f} [{lo:.2f}, {hi:.2f}]")
                cells.append(f"{np.mean(scores):.2f}")
            rows.append((pair, config, cells))
            print(f"[evaluate_demo] {pair} {config}: view 0 {cells[0]}; view 1 {cells[1]}; "
                  f"both {cells[2]}" + (f"; segregated {cells[3]}, mean score {cells[4]}"
                                        if args.segregation else "")
                  + (f" (generated in {secs:.0f} s)" if secs else ""), flush=True)
            if args.min_share is not None and min(k[:2]) < args.min_share * n:
                failed.append(f"{pair} {config}")
            if args.grid:
                grid_rows.append((pair, config, dirs[:args.grid_seeds]))
    lines = ["| pair (view) | method | view 1 recognised | view 2 recognised | both |",
             "|---|---|---|---|---|"]
    if args.segregation:
        lines = [lines[0] + " segregated | mean segregation score |", lines[1] + "---|---|"]
    for pair, config, cells in rows:
        p1, p2, view = pair_spec(pair)
        lines.append(f"| {p1} / {p2} ({view}) | {config} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.grid:
        make_grid(grid_rows, args.grid)
    if args.sheet:
        make_sheet(made[cells_todo[0]][0][:4], args.sheet)
    if failed:
        print(f"[evaluate_demo] FAILED: below {args.min_share:.2f} in " + ", ".join(failed))
        return 1
    return 0


def make_sheet(dirs, path, gap=8):
    """The program's sheet.png of up to 4 samples, 2 per row, on white."""
    sheets = [Image.open(os.path.join(d, "sheet.png")).convert("RGB") for d in dirs]
    w, h = sheets[0].size
    ncol = min(2, len(sheets))
    nrow = (len(sheets) + ncol - 1) // ncol
    canvas = Image.new("RGB", (ncol * w + (ncol - 1) * gap, nrow * h + (nrow - 1) * gap),
                       (255, 255, 255))
    for i, sh in enumerate(sheets):
        r, c = divmod(i, ncol)
        canvas.paste(sh, (c * (w + gap), r * (h + gap)))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    print(f"[evaluate_demo] wrote {path}")


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
        p1, p2, view = pair_spec(pair)
        d.text((4, y + 18), f"{dg.class_of_prompt(p1)}/{dg.class_of_prompt(p2)} {view}"
               if dg is not demo_glyphs_module() else f"{pair[0].upper()}/{pair[1].upper()} {view}",
               fill=(0, 0, 0))
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


def demo_glyphs_module():
    import demo_glyphs
    return demo_glyphs


if __name__ == "__main__":
    sys.exit(main())

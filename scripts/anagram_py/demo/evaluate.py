"""Judging the anagrams the program makes with a demo model (scripts/demo/evaluate_demo.py,
whose docstring describes the measures): `anagram gen` per pair and configuration, each view
shown to the independent judge, Wilson intervals, the segregation score, picture grids."""
import argparse
import concurrent.futures
import glob
import json
import math
import os
import subprocess
import time
from collections import Counter

import numpy as np
import torch
from PIL import Image

from ..paths import ROOT
from . import factor_views as fv
from . import glyphs, objects

GLYPH_PAIRS = {  # name -> (prompt upright, prompt of the view, view)
    "nz": ("the letter n", "the letter z", "rot90"),
    "69": ("the digit 6", "the digit 9", "rot180"),
    "mw": ("the letter m", "the letter w", "flip"),
    "uc": ("the letter u", "the letter c", "rot90"),
    "l7": ("the letter l", "the digit 7", "rot180"),
    "av": ("the letter a", "the letter v", "flip"),
    "hs": ("the letter h", "the letter s", "rot90"),
}
OBJECT_PAIRS = {  # name -> (prompt upright, prompt of the view, view)
    "dogcat": ("dog", "cat", "rot180"),
    "rabbitduck": ("rabbit", "duck", "rotate_cw"),
    "horsebird": ("horse", "bird", "flip"),
    "housetree": ("house", "tree", "flip"),
    "penguinowl": ("penguin", "owl", "rot180"),
    "snailfish": ("snail", "fish", "rotate_cw"),
    "carrocket": ("car", "rocket", "rotate_cw"),
}
GLYPH_DEFAULTS = dict(bundle="models/demo-glyphs", judge="models/demo-judge/judge.pt",
                      pairs="nz,69,mw", out="build-py/demo-eval")
OBJECT_DEFAULTS = dict(bundle="models/demo-objects", judge="models/demo-objects-judge/judge.pt",
                       pairs="dogcat,rabbitduck,horsebird,housetree",
                       out="build-py/demo-objects-eval")
# --data NAME -> (data module, pairs, defaults)
DATA = {"glyphs": (glyphs, GLYPH_PAIRS, GLYPH_DEFAULTS),
        "objects": (objects, OBJECT_PAIRS, OBJECT_DEFAULTS)}
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


def pair_spec(pairs, spec):
    """"name", "name@view" or "name@view1+view2" -> (prompt 1, prompt 2, view), name one of
    `pairs`; view is the pair's own view, the one named, or "view1+view2" (see pair_views)."""
    name, _, view = spec.partition("@")
    if name not in pairs:
        raise SystemExit(f"unknown pair {name!r}; known: {', '.join(pairs)}")
    p1, p2, own = pairs[name]
    return p1, p2, view or own


def pair_views(pairs, spec):
    """(prompt 1, prompt 2, views): views the list of --view options `anagram gen` gets: one
    view (prompt 1 upright, prompt 2 under the view) or, for "name@view1+view2", a view per
    prompt (e.g. low_pass+high_pass: prompt 1 from afar, prompt 2 up close)."""
    p1, p2, view = pair_spec(pairs, spec)
    views = view.split("+")
    if len(views) > 2 or not all(views):
        raise SystemExit(f"pair {spec!r}: name@view or name@view1+view2")
    return p1, p2, views


def with_views(pairs_arg, views):
    """--views V1,V2: every pair of --pairs without its own @view gets @V1+V2."""
    if not views:
        return pairs_arg
    joined = "+".join(v.strip() for v in views.split(","))
    return ",".join(p if "@" in p else f"{p}@{joined}" for p in pairs_arg.split(","))


def generate(args, pairs, pair, config, out):
    p1, p2, views = pair_views(pairs, pair)
    have = [d for d in sample_dirs(out) if len(glob.glob(os.path.join(d, "view_*.png"))) == 2]
    if len(have) >= args.seeds:
        return have[:args.seeds], 0.0
    if os.path.exists(out):  # never removed here: it may hold pictures someone wants
        raise SystemExit(f"{out} holds {len(have)} of {args.seeds} complete samples; "
                         "delete it to make them again")
    cmd = [args.anagram, "gen", "--bundle", args.bundle, "--prompt", p1, "--prompt", p2,
           *[a for v in views for a in ("--view", v)], "--steps", str(args.steps), "--seed", "0",
           "--num-samples", str(args.seeds), "--threads", "1", "--out", out] + CONFIGS[config]
    t0 = time.time()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-2000:]}")
    return sample_dirs(out)[:args.seeds], time.time() - t0


def load_view(path, size):
    a = np.asarray(Image.open(path).convert("RGB"))
    x = torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 127.5 - 1
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="area")[0]
    return x


def view_files(d):
    """The view pictures the program wrote into sample folder d (not the 64-pixel copies)."""
    return sorted(v for v in glob.glob(os.path.join(d, "view_*.png")) if not v.endswith("_64.png"))


def judge_sample(dg, judge, classes, d, prompts):
    x = torch.stack([load_view(v, dg.SIZE) for v in view_files(d)])
    with torch.no_grad():
        pred = judge(x).argmax(1).tolist()
    named = [classes[i] for i in pred]
    return [named[k] == dg.class_of_prompt(prompts[k]) for k in range(len(prompts))], named


def share(k, n):
    """"k/n = share [Wilson 95% interval]", the table's cell."""
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n if n else 0:.2f} [{lo:.2f}, {hi:.2f}]"


def check_renderings(d, views, size):
    """The anagram of sample folder d under each factorized view, as factor_views renders it,
    must be the view picture the program wrote (to within PNG rounding): else the evaluation's
    filters (and so its components) are not the program's (e.g. another --view-arg)."""
    anagram = load_view(os.path.join(d, "anagram.png"), size)
    for view, path in zip(views, view_files(d)):
        if not fv.is_factor(view):
            continue
        diff = (fv.render(view, anagram) - load_view(path, size)).abs().max().item()
        if diff > 2.5 / 127.5:
            raise SystemExit(f"{path}: the evaluation's {view} rendering differs from the "
                             f"program's by {diff * 127.5:.1f} levels of 255")
    return anagram


def judge_components(dg, judge, classes, d, prompts, views):
    """For each view with a component of its own (high_pass, color): is the component alone
    (the picture minus its low pass, or minus its grayscale; normalise()d) judged as the
    view's prompt? {view index: (hit, named class)}."""
    anagram = check_renderings(d, views, dg.SIZE)
    ks = [k for k, v in enumerate(views) if fv.has_own_component(v)]
    if not ks:
        return {}
    pics = torch.stack([fv.normalise(fv.component(views[k], anagram)) for k in ks])
    with torch.no_grad():
        pred = judge(pics).argmax(1).tolist()
    return {k: (classes[i] == dg.class_of_prompt(prompts[k]), classes[i])
            for k, i in zip(ks, pred)}


def target_probabilities(dg, judge, classes, d, prompts):
    """The judge's probability of each view's prompt on the view pictures of sample folder d."""
    x = torch.stack([load_view(v, dg.SIZE) for v in view_files(d)])
    with torch.no_grad():
        prob = judge(x).softmax(1)
    return [prob[k, classes.index(dg.class_of_prompt(p))].item() for k, p in enumerate(prompts)]


def mean_difference(dirs, reference):
    """The mean absolute difference, in levels of 255, between the anagrams of two cells, seed
    by seed (how much a configuration changes the baseline's pictures)."""
    diffs = [np.abs(np.asarray(Image.open(os.path.join(a, "anagram.png")).convert("RGB"), np.float32)
                    - np.asarray(Image.open(os.path.join(b, "anagram.png")).convert("RGB"),
                                 np.float32)).mean() for a, b in zip(dirs, reference)]
    return float(np.mean(diffs))


def calibrate(dg, judge, classes, n, view_pairs, seed=20261204):
    """How well the judge reads what the factorized views show, on pictures of the diffusion
    model's training fonts (the judge never saw them; no diffusion model involved): the
    glyph as drawn, its renderings and components, and made-up hybrids
    component(view 1, glyph A) + component(view 2, glyph B) (B another class), clamped to
    [-1, 1], whose view 1 should read A and view 2 B. Rows (what, shown as, hits, n)."""
    imgs, labels, _, _ = dg.make_dataset(n, dg.TRAIN_SOURCE, seed, with_captions=False)
    x = imgs.float() / 127.5 - 1
    ids = torch.tensor([classes.index(dg.CLASSES[i]) for i in labels.tolist()])
    b, ids_b = x.roll(1, 0), ids.roll(1, 0)          # classes are balanced: i % K, so B != A
    with torch.no_grad():
        def hits(pics, target):
            return (judge(pics).argmax(1) == target)
        rows = [("a glyph", "as drawn", int(hits(x, ids).sum()), n)]
        singles = sorted({v for pair in view_pairs for v in pair if fv.is_factor(v)},
                         key=fv.FACTOR_VIEWS.index)
        for v in singles:
            if fv.render(v, x) is not x:
                rows.append(("a glyph", f"{v} rendering", int(hits(fv.render(v, x), ids).sum()), n))
            if fv.has_own_component(v):
                rows.append(("a glyph", f"{v} component alone, normalised",
                             int(hits(fv.normalise(fv.component(v, x)), ids).sum()), n))
        for v1, v2 in view_pairs:
            h = (fv.component(v1, x) + fv.component(v2, b)).clamp(-1, 1)
            what = f"made-up {v1}+{v2} hybrid (A {v1}, B {v2})"
            h1, h2 = hits(fv.render(v1, h), ids), hits(fv.render(v2, h), ids_b)
            rows.append((what, f"{v1} rendering reads A", int(h1.sum()), n))
            rows.append((what, f"{v2} rendering reads B", int(h2.sum()), n))
            rows.append((what, "both", int((h1 & h2).sum()), n))
            rows.append((what, f"{v2} rendering reads A", int(hits(fv.render(v2, h), ids).sum()), n))
            if fv.has_own_component(v2):
                rows.append((what, f"{v2} component alone reads B",
                             int(hits(fv.normalise(fv.component(v2, h)), ids_b).sum()), n))
    return rows


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


def segregation_score(dg, judge, classes, d, prompts, view):
    """The sample's segregation score (see scripts/demo/evaluate_demo.py) and the judge's
    probabilities r[k][half] for the best split."""
    anagram = load_view(os.path.join(d, "anagram.png"), dg.SIZE)     # (3, S, S)
    # the view pictures the program wrote must be this anagram under the views
    views = view_files(d)
    assert torch.allclose(apply_view(anagram, view), load_view(views[1], dg.SIZE), atol=1e-6), \
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


def parse_args(argv=None, doc=None):
    """The options of scripts/demo/evaluate_demo.py (doc: its usage text for --help), with the
    --data defaults filled in."""
    doc = doc or __doc__
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
    p.add_argument("--data", default="glyphs", help="glyphs (default) or objects")
    p.add_argument("--anagram", default=default_anagram())
    p.add_argument("--bundle", default=None, help="default: models/demo-glyphs (glyphs)")
    p.add_argument("--judge", default=None, help="default: models/demo-judge/judge.pt (glyphs)")
    p.add_argument("--pairs", default=None, help="default: nz,69,mw (glyphs)")
    p.add_argument("--views", default=None,
                   help="V1,V2: the views of every pair without its own @view, one per prompt "
                        "(e.g. low_pass,high_pass: prompt 1 from afar, prompt 2 up close)")
    p.add_argument("--calibrate", type=int, default=None,
                   help="judge N pictures of the model's training fonts as the factorized "
                        "views show them, and made-up hybrids (default: 320 when a pair has "
                        "factorized views, else 0)")
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
    if args.data not in DATA:
        p.error("--data: glyphs or objects")
    for key, value in DATA[args.data][2].items():
        if getattr(args, key) is None:
            setattr(args, key, value if key == "pairs" else os.path.join(ROOT, value))
    if args.segregation is None:
        args.segregation = args.data == "objects"
    args.pairs = with_views(args.pairs, args.views)
    return args


def main(argv=None, doc=None):
    args = parse_args(argv, doc)
    dg, pairs_known, _ = DATA[args.data]
    torch.set_num_threads(1)
    judge = torch.jit.load(args.judge).eval()
    with open(os.path.join(os.path.dirname(args.judge), "judge.json")) as f:
        classes = json.load(f)["classes"]
    pairs, configs = args.pairs.split(","), args.configs.split(",")
    rows, failed, grid_rows = [], [], []
    view_pairs = [tuple(pair_views(pairs_known, pair)[2]) for pair in pairs]
    factor = any(fv.is_factor(v) for vp in view_pairs for v in vp)
    cells_todo = [(pair, config) for pair in pairs for config in configs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        made = {pc: pool.submit(generate, args, pairs_known, pc[0], pc[1],
                                os.path.join(args.out, f"{pc[0]}_{pc[1]}")) for pc in cells_todo}
        made = {pc: f.result() for pc, f in made.items()}
    for pair in pairs:
        for config in configs:
            dirs, secs = made[(pair, config)]
            p1, p2, view = pair_spec(pairs_known, pair)
            views = pair_views(pairs_known, pair)[2]
            prompts = (p1, p2)
            judged = [judge_sample(dg, judge, classes, d, prompts) for d in dirs]
            hits = np.array([j[0] for j in judged])
            n = len(dirs)
            k = hits.sum(0).tolist() + [int(hits.all(1).sum())]
            cells = [share(kk, n) for kk in k]
            if factor:
                comps = [judge_components(dg, judge, classes, d, prompts, views) for d in dirs]
                ks = sorted(comps[0]) if comps else []
                cells.append("; ".join(f"{views[kk]}: " + share(sum(c[kk][0] for c in comps), n)
                                       for kk in ks) or "-")
                probs = np.array([target_probabilities(dg, judge, classes, d, prompts)
                                  for d in dirs])
                cells.append(" / ".join(f"{m:.2f}" for m in probs.mean(0)))
                ref = made.get((pair, "baseline"), (None,))[0]
                cells.append(f"{mean_difference(dirs, ref):.1f}" if ref and config != "baseline"
                             else "-")
                said = [Counter(j[1][kk] for j in judged) for kk in range(2)]
                print(f"[evaluate_demo] {pair} {config}: the judge named "
                      + "; ".join(f"view {kk} ({views[kk] if kk < len(views) else view}) "
                                  + ", ".join(f"{c} {m}" for c, m in said[kk].most_common(4))
                                  for kk in range(2))
                      + "".join(f"; {views[kk]} component alone "
                                + ", ".join(f"{c} {m}" for c, m in
                                            Counter(cc[kk][1] for cc in comps).most_common(4))
                                for kk in ks), flush=True)
            if args.segregation:
                scores = [segregation_score(dg, judge, classes, d, prompts, view)[0] for d in dirs]
                seg = sum(sc >= 0.5 for sc in scores)
                lo, hi = wilson(seg, n)
                cells.append(f"{seg}/{n} = {seg / n:.2f} [{lo:.2f}, {hi:.2f}]")
                cells.append(f"{np.mean(scores):.2f}")
            rows.append((pair, config, cells))
            print(f"[evaluate_demo] {pair} {config}: view 0 {cells[0]}; view 1 {cells[1]}; "
                  f"both {cells[2]}" + (f"; segregated {cells[-2]}, mean score {cells[-1]}"
                                        if args.segregation else "")
                  + (f"; {cells[3]} component alone" if factor else "")
                  + (f" (generated in {secs:.0f} s)" if secs else ""), flush=True)
            if args.min_share is not None and min(k[:2]) < args.min_share * n:
                failed.append(f"{pair} {config}")
            if args.grid:
                grid_rows.append((pair, config, dirs[:args.grid_seeds]))
    lines = ["| pair (view) | method | view 1 recognised | view 2 recognised | both |",
             "|---|---|---|---|---|"]
    if factor:
        lines = [lines[0] + " up close / in colour: the component alone (normalised) |"
                 " mean judged p(view 1 glyph) / p(view 2 glyph) |"
                 " mean abs. difference from baseline (of 255) |",
                 lines[1] + "---|---|---|"]
    if args.segregation:
        lines = [lines[0] + " segregated | mean segregation score |", lines[1] + "---|---|"]
    for pair, config, cells in rows:
        p1, p2, view = pair_spec(pairs_known, pair)
        lines.append(f"| {p1} / {p2} ({view}) | {config} | " + " | ".join(cells) + " |")
    n_cal = args.calibrate if args.calibrate is not None else (320 if factor else 0)
    if n_cal:
        factor_pairs = [vp for vp in dict.fromkeys(view_pairs)
                        if len(vp) == 2 and all(fv.is_factor(v) for v in vp)]
        lines += ["", f"Judge calibration: {n_cal} pictures in the diffusion model's training "
                  "fonts (no diffusion model involved)", "",
                  "| pictures | shown as | judged correct |", "|---|---|---|"]
        lines += [f"| {what} | {how} | {share(kk, nn)} |"
                  for what, how, kk, nn in calibrate(dg, judge, classes, n_cal, factor_pairs)]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.grid:
        make_grid(dg, pairs_known, grid_rows, args.grid)
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


def make_grid(dg, pairs_known, grid_rows, path):
    """Rows: pair x config; each cell: the anagram and its second view, 2x scale. Rows are
    labelled with the pair's glyphs (N/Z) or classes (dog/cat) and the view."""
    from PIL import ImageDraw
    s, pad, label_w = 64, 4, 150
    ncell = max(len(r[2]) for r in grid_rows)
    w = label_w + ncell * (2 * s + 3 * pad)
    h = len(grid_rows) * (s + pad) + pad
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    for r, (pair, config, dirs) in enumerate(grid_rows):
        y = pad + r * (s + pad)
        p1, p2, view = pair_spec(pairs_known, pair)
        d.text((4, y + 18), f"{dg.class_of_prompt(p1)}/{dg.class_of_prompt(p2)} {view}"
               if dg is not glyphs else f"{pair[0].upper()}/{pair[1].upper()} {view}",
               fill=(0, 0, 0))
        d.text((4, y + 34), config, fill=(0, 0, 0))
        for c, sd in enumerate(dirs):
            x = label_w + c * (2 * s + 3 * pad)
            for j, v in enumerate(view_files(sd)):
                im = Image.open(v).convert("RGB").resize((s, s), Image.NEAREST)
                canvas.paste(im, (x + j * (s + pad), y))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    print(f"[evaluate_demo] wrote {path}")

#!/usr/bin/env python3
"""The table of scripts/gpu_check.sh, from what its phases left in OUT.

Usage:
    python3 scripts/tools/gpu_check_report.py OUT

Reads OUT/phases.tsv (name, exit code, seconds), the metadata.json of the gen runs (seconds per
step of each stage for the first and the second sample, peak memory), the benchmark's log
(share of a step outside the UNet, the anti-segregation step against a UNet call), the tiny
bundle's CPU and device pictures (largest difference in 8-bit levels) and diffusers.json
(time_diffusers_if.py). A phase that failed shows as such; the rest still print. Markdown
on stdout.
"""
import json
import os
import re
import sys


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def sample_stages(folder, index):
    meta = read_json(os.path.join(folder, f"sample_{index:03d}", "metadata.json"))
    return {s["stage"]: s for s in meta["stages"]} if meta else {}


def gen_rows(out, name, label):
    first, later = sample_stages(os.path.join(out, name), 0), sample_stages(os.path.join(out, name), 1)
    rows = []
    for stage in sorted(first):
        a, b = first[stage], later.get(stage)
        rows.append(f"| {label} | {stage} ({a['size']}x{a['size']}, {a['steps']} steps) | "
                    f"{a['seconds_per_step']:.3f} | "
                    f"{b['seconds_per_step'] if b else float('nan'):.3f} | "
                    f"{max(a['peak_memory_mib'], b['peak_memory_mib'] if b else 0):.0f} |")
    return rows or [f"| {label} | (no sample: see {name}.log) | | | |"]


def bench_lines(out):
    try:
        with open(os.path.join(out, "bench.log")) as f:
            text = f.read()
    except OSError:
        return []
    keep = re.compile(r"^(stage \d|  baseline|    outside UNet|  method|    anti-segregation|"
                      r"  peak memory|device|load)")
    return [line.rstrip() for line in text.splitlines() if keep.match(line)]


def level_difference(a, b):
    try:
        import numpy as np
        from PIL import Image
        x = np.asarray(Image.open(a)).astype(int)
        y = np.asarray(Image.open(b)).astype(int)
    except (OSError, ImportError):
        return None
    d = abs(x - y)
    return int(d.max()), float(d.mean()), float((d > 2).mean() * 100)


def main():
    out = sys.argv[1]
    lines = ["# anagram GPU check", ""]
    phases = []
    if os.path.exists(os.path.join(out, "phases.tsv")):
        with open(os.path.join(out, "phases.tsv")) as f:
            phases = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    lines += ["| phase | exit | seconds |", "| --- | --- | --- |"]
    lines += [f"| {n} | {'ok' if rc == '0' else 'FAILED ' + rc} | {s} |" for n, rc, s in phases]
    lines += ["", "Seconds per step (sample 1 includes one-off costs; sample 2 is the steady "
              "state) and peak memory (CUDA: allocated; CPU: resident set):", "",
              "| run | stage | sample 1 s/step | sample 2 s/step | peak MiB |",
              "| --- | --- | --- | --- | --- |"]
    lines += gen_rows(out, "gen_method", "method, 2 views")
    lines += gen_rows(out, "gen_baseline", "baseline, 3 views")
    lines += gen_rows(out, "latency_jit0", "tiny, default executor")
    lines += gen_rows(out, "latency_jit1", "tiny, ANAGRAM_JIT_OPTIMIZE=1")
    ref = read_json(os.path.join(out, "diffusers.json"))
    if ref:
        for stage in (1, 2):
            lines.append(f"| diffusers {ref['dtype']}, 1 prompt | {stage} ({ref['steps']} steps) | "
                         f"{ref['first'][f'stage{stage}_seconds_per_step']:.3f} | "
                         f"{ref['later'][f'stage{stage}_seconds_per_step']:.3f} | "
                         f"{ref['peak_memory_mib'] or float('nan'):.0f} |")
    bench = bench_lines(out)
    if bench:
        lines += ["", "Benchmark (anagram_bench, the large bundle):", "", "```"] + bench + ["```"]
    diff = level_difference(os.path.join(out, "tiny_cpu", "sample_000", "anagram.png"),
                            os.path.join(out, "tiny_device", "sample_000", "anagram.png"))
    if diff:
        lines += ["", f"Tiny bundle, same seed, CPU against the device: largest difference "
                      f"{diff[0]} levels, mean {diff[1]:.3f}, {diff[2]:.2f}% of values differ by "
                      f"more than 2."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

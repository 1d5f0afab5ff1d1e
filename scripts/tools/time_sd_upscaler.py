#!/usr/bin/env python3
"""Time one UNet call of Stable Diffusion's x4 upscaler (stage III, docs/stage3.md) on this
machine: the eager diffusers UNet built as scripts/export/export_sd_upscaler.py --random-init x4
builds it (same configuration and seed), or a traced stage3/unet.pt of a bundle.

Usage:
    PYTHONPATH=scripts .venv/bin/python scripts/tools/time_sd_upscaler.py \
        [--bundle BUNDLE] [--latent 256] [--batch 2] [--runs 2] [--threads 1] [--json OUT]

One call is one denoising step of one view with classifier-free guidance (batch 2: both
halves); N views take N times as long (batch 2N). The first run includes one-off costs; every
run is reported. Prints one JSON object (also to --json).
"""
import argparse
import json
import os
import resource
import time

import torch

from anagram_py.export.sd_upscaler import UNET_FILE, build_random, unet_inputs


def main():
    p = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    p.add_argument("--bundle", default=None, help="time BUNDLE/stage3/unet.pt instead")
    p.add_argument("--latent", type=int, default=256, help="latent side (256 for a 1024 picture)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    if args.bundle:
        unet = torch.jit.load(os.path.join(args.bundle, UNET_FILE))
        what = os.path.join(args.bundle, UNET_FILE)
        channels, text_dim = 7, None
        for name, param in unet.named_parameters():
            if name.endswith("attn2.to_k.weight"):
                text_dim = param.shape[1]
                break
    else:
        unet = build_random("x4")["unet"].eval().requires_grad_(False)
        what = "eager diffusers UNet, x4 configuration, random weights"
        channels, text_dim = unet.config.in_channels, unet.config.cross_attention_dim
    build_s = time.time() - started

    class Shape:  # what unet_inputs reads
        config = type("C", (), {"in_channels": channels, "cross_attention_dim": text_dim})

    inputs = unet_inputs(Shape, args.batch, args.latent, torch.float32, torch.device("cpu"), 0,
                         500, [20] * args.batch)
    runs = []
    with torch.no_grad():
        for _ in range(args.runs):
            t = time.time()
            out = unet(*inputs)
            out = out.sample if hasattr(out, "sample") else out
            runs.append(round(time.time() - t, 2))
    result = {"module": what, "latent": args.latent, "picture": 4 * args.latent,
              "batch": args.batch, "threads": args.threads, "dtype": "float32",
              "seconds_per_call": runs, "build_or_load_s": round(build_s, 1),
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
              "output_shape": list(out.shape),
              "finite": bool(torch.isfinite(out).all()), "torch": torch.__version__}
    text = json.dumps(result)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time diffusers' own DeepFloyd IF pipelines, IFPipeline then IFSuperResolutionPipeline, on
the weights and steps anagram runs: the Python reference of scripts/gpu_check.sh.

Usage:
    python3 scripts/tools/time_diffusers_if.py --random-init IF-I-M --random-init-stage2 IF-II-M \
        --device cuda --dtype float16 --steps 30 [--json OUT.json]
    python3 scripts/tools/time_diffusers_if.py --source STAGE1_DIR --stage2 STAGE2_DIR \
        --device cpu --steps 3

What it times is the published pipelines' own loop: baseline sampling, one prompt, no views
(classifier-free guidance batch 2), noise level 50. The prompt is encoded once and given as
prompt_embeds, so the T5 encoder is not timed. Each pipeline runs twice with the same seed
and both runs are reported: the first includes one-off costs (allocations, kernel selection),
the second is the steady state. --random-init builds the weights as
scripts/export/export_if.py --random-init does (same configurations and seeds), so the figures
compare with the bundle that command writes. Prints one JSON object (also to --json).
"""
import argparse
import json
import time

import torch

from anagram_py.export.if_common import DTYPES
from anagram_py.export.if_sources import (load_source, load_stage2_source, random_stage1,
                                          random_stage2)
from anagram_py.export.if_trace import tokenize
from anagram_py.paths import TINY_BUNDLE


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    p.add_argument("--source", help="IF stage I pipeline folder")
    p.add_argument("--stage2", help="IF stage II pipeline folder")
    p.add_argument("--random-init", help="stage I stand-in name, e.g. IF-I-M")
    p.add_argument("--random-init-stage2", help="stage II stand-in name, e.g. IF-II-M")
    p.add_argument("--t5-layers", type=int, default=2)
    p.add_argument("--tokenizer", default=f"{TINY_BUNDLE}/spiece.model")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--steps", type=int, default=30, help="steps of each stage")
    p.add_argument("--noise-level", type=int, default=50)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    if bool(args.random_init) == bool(args.source):
        p.error("give --source (with --stage2) or --random-init (with --random-init-stage2)")
    return args


def pipelines(args, dtype, device):
    """IFPipeline and IFSuperResolutionPipeline on the chosen weights, plus the T5 states of
    a prompt and of the empty negative prompt."""
    from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline

    if args.random_init:
        unet, t5, spiece, sched = random_stage1(args.random_init, args.t5_layers, args.tokenizer,
                                                dtype, device)
        unet2, sched2, noising = random_stage2(args.random_init_stage2, dtype, device)
    else:
        unet, t5, spiece, sched = load_source(args.source, dtype, device)
        unet2, sched2, noising = load_stage2_source(args.stage2, dtype, device)
    ids, mask = tokenize(spiece, ["a photo of a dog", ""])
    with torch.no_grad():
        states = t5(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
    common = dict(tokenizer=None, text_encoder=None, safety_checker=None, feature_extractor=None,
                  watermarker=None, requires_safety_checker=False)
    stage1 = IFPipeline(unet=unet, scheduler=DDPMScheduler.from_config(sched), **common)
    stage2 = IFSuperResolutionPipeline(unet=unet2, scheduler=DDPMScheduler.from_config(sched2),
                                       image_noising_scheduler=DDPMScheduler.from_config(noising),
                                       **common)
    for pipe in (stage1, stage2):
        pipe.set_progress_bar_config(disable=True)
    return stage1, stage2, states[:1], states[1:]


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, run):
    synchronize(device)
    start = time.perf_counter()
    out = run()
    synchronize(device)
    return out, time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    stage1, stage2, prompt, negative = pipelines(args, dtype, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = []
    for _ in range(2):
        generator = torch.Generator("cpu").manual_seed(0)
        low, s1 = timed(device, lambda: stage1(
            prompt_embeds=prompt, negative_prompt_embeds=negative, generator=generator,
            num_inference_steps=args.steps, output_type="pt").images)
        _, s2 = timed(device, lambda: stage2(
            image=low, prompt_embeds=prompt, negative_prompt_embeds=negative,
            generator=generator, num_inference_steps=args.steps, noise_level=args.noise_level,
            output_type="pt").images)
        runs.append({"stage1_seconds_per_step": s1 / args.steps,
                     "stage2_seconds_per_step": s2 / args.steps, "seconds": s1 + s2})
    figures = {
        "pipelines": "diffusers IFPipeline + IFSuperResolutionPipeline (baseline, 1 prompt)",
        "weights": (f"random-init {args.random_init} + {args.random_init_stage2}"
                    if args.random_init else f"{args.source} + {args.stage2}"),
        "device": str(device), "dtype": args.dtype, "steps": args.steps,
        "first": runs[0], "later": runs[1],
        "peak_memory_mib": (torch.cuda.max_memory_allocated(device) / 2**20
                            if device.type == "cuda" else None),
    }
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

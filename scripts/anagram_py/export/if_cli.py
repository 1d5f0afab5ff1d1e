"""The command line of scripts/export/export_if.py: options, then the export's phases in order
(load, find and capture the attention layers, trace, verify, write)."""
import argparse
import os
import shutil
import time

import torch

from .. import if_configs
from ..paths import ROOT, TINY_BUNDLE
from ..tolerance import ToleranceError, tf32_disabled, trace_precision
from .if_attention import find_attention_layers, install_capture
from .if_bundle import build_manifest, write_bundle
from .if_common import DEFAULT_NOISE_LEVEL, DTYPES, STAGE2_FILE, log
from .if_sources import (check_dtype_supported, load_source, load_stage2_source, random_stage1,
                         random_stage2, stage2_text_dim)
from .if_trace import remove_device_constants, trace_text_encoder, trace_unet, trace_unet_stage2
from .if_verify import (verify_gradients, verify_maps_explicitly, verify_reloaded,
                        verify_reloaded_stage2, verify_text_encoder, verify_unet,
                        verify_unet_stage2)


def parse_args(argv=None, doc=None):
    """The options of scripts/export/export_if.py (doc: its usage text for --help)."""
    doc_head, _, doc_rest = (doc or __doc__).partition("\n\n")
    p = argparse.ArgumentParser(description=doc_head, epilog=doc_rest or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="STAGE1_SOURCE OUTDIR",
                   help="stage I pipeline folder or hub id, then the bundle folder to write "
                        "(with --random-init: only OUTDIR)")
    p.add_argument("--stage2", dest="stage2_source", default=None, metavar="STAGE2_SOURCE",
                   help="IF stage II pipeline folder or hub id to export as unet_stage2.pt")
    p.add_argument("--random-init", default=None, metavar="NAME",
                   help=f"stage I with NAME's configuration and random weights: "
                        f"{', '.join(sorted(if_configs.RANDOM_INIT_STAGE1))}")
    p.add_argument("--random-init-stage2", default=None, metavar="NAME",
                   help=f"stage II with NAME's configuration and random weights: "
                        f"{', '.join(sorted(if_configs.RANDOM_INIT_STAGE2))}")
    p.add_argument("--t5-layers", type=int, default=2,
                   help="layers of the XXL-width T5 stand-in of --random-init (default 2)")
    p.add_argument("--tokenizer", default=os.path.join(TINY_BUNDLE, "spiece.model"),
                   help="SentencePiece model for --random-init (default: the tiny bundle's)")
    p.add_argument("--no-stage2", action="store_true",
                   help="drop an existing bundle's stage II instead of keeping it")
    p.add_argument("--noise-level", type=int, default=DEFAULT_NOISE_LEVEL,
                   help="stage II default_noise_level in the manifest "
                        f"(default {DEFAULT_NOISE_LEVEL})")
    p.add_argument("--name", default=None, help="bundle name (default: OUTDIR's basename)")
    p.add_argument("--description", default=None, help="free-text description")
    p.add_argument("--source-name", default=None,
                   help="what to record as source.model (default: STAGE1_SOURCE as given)")
    p.add_argument("--stage2-source-name", default=None,
                   help="what to record as source.stage2_model (default: STAGE2_SOURCE)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--variant", default=None, help="weights variant to load, e.g. fp16")
    p.add_argument("--attention-resolution", type=int, default=32,
                   help="capture attention layers with this query grid (default 32)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args(argv)
    if args.random_init:
        if len(args.paths) != 1:
            p.error("with --random-init give only OUTDIR")
        args.source, args.outdir = f"random-init {args.random_init}", args.paths[0]
    else:
        if len(args.paths) != 2:
            p.error("give STAGE1_SOURCE and OUTDIR")
        args.source, args.outdir = args.paths
    if args.stage2_source and args.random_init_stage2:
        p.error("--stage2 and --random-init-stage2 exclude each other")
    if args.random_init_stage2:
        args.stage2_source = f"random-init {args.random_init_stage2}"
    if args.no_stage2 and args.stage2_source:
        p.error("--no-stage2 with a stage II to export")
    if not 0 <= args.noise_level < 1000:
        p.error("--noise-level must be in [0, 1000)")
    if args.name is None:
        args.name = os.path.basename(os.path.abspath(args.outdir))
    if args.description is None:
        args.description = default_description(args)
    return args


def default_description(args):
    """The manifest description when --description is not given."""
    if args.random_init or args.random_init_stage2:
        parts = []
        if args.random_init:
            parts.append(f"stage I: {args.random_init} UNet "
                         f"({if_configs.RANDOM_INIT_SOURCE[args.random_init]})")
        else:
            parts.append(f"stage I exported from {args.source_name or args.source}")
        if args.random_init_stage2:
            parts.append(f"stage II: {args.random_init_stage2} UNet "
                         f"({if_configs.RANDOM_INIT_SOURCE[args.random_init_stage2]})")
        elif args.stage2_source:
            parts.append(f"stage II exported from {args.stage2_source_name or args.stage2_source}")
        text = "RANDOM WEIGHTS, real-size compute stand-in; " + "; ".join(parts)
        if args.random_init:
            text += (f"; text encoder: T5 v1.1 XXL widths (d_model 4096, d_ff 10240, 64 heads x 64) "
                     f"with only {args.t5_layers} of its 24 layers, tokenizer "
                     f"{_shown_path(args.tokenizer)}"
                     " (not T5's). Pictures are noise.")
        return text
    text = f"DeepFloyd IF stage I exported from {args.source_name or args.source}"
    if args.stage2_source:
        text += f", stage II from {args.stage2_source_name or args.stage2_source}"
    return text


def _shown_path(path):
    return os.path.relpath(path, ROOT) if path.startswith(ROOT) else path


def main(argv=None, doc=None):
    """Export; returns 0 or raises SystemExit with the reason (doc: usage text for --help)."""
    args = parse_args(argv, doc)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    torch.manual_seed(0)
    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    check_dtype_supported(dtype, device)

    if args.random_init:
        unet, text_encoder, spiece, scheduler_config = random_stage1(
            args.random_init, args.t5_layers, args.tokenizer, dtype, device)
    else:
        unet, text_encoder, spiece, scheduler_config = load_source(args.source, dtype, device,
                                                                   args.variant)
    text_dim = text_encoder.config.d_model
    stage2 = None
    if args.random_init_stage2:
        stage2 = random_stage2(args.random_init_stage2, dtype, device)
    elif args.stage2_source:
        stage2 = load_stage2_source(args.stage2_source, dtype, device, args.variant)
    if stage2 is not None and stage2_text_dim(stage2[0]) != text_dim:
        raise SystemExit(f"error: the stage II UNet expects {stage2_text_dim(stage2[0])}-d text "
                         f"states, stage I's text encoder gives {text_dim}")
    log(f"loaded in {time.time() - started:.1f} s")

    layers, calls = find_attention_layers(unet, args.attention_resolution, text_dim)
    log(f"attention layers ({len(calls)} in all; query counts "
        f"{', '.join(f'{n}={q}' for n, q in calls)})")
    log(f"capturing {len(layers)} layers at {args.attention_resolution}x"
        f"{args.attention_resolution}: {', '.join(layers)}")

    phase = time.time()
    state = install_capture(unet, layers)
    with trace_precision(device):  # TF32 off on CUDA: the traces record it
        traced_unet = trace_unet(unet, state, text_dim)
        traced_te = trace_text_encoder(text_encoder, spiece)
        traced_unet2 = trace_unet_stage2(stage2[0], text_dim) if stage2 is not None else None
    n = remove_device_constants(traced_unet) + remove_device_constants(traced_te)
    if traced_unet2 is not None:
        n += remove_device_constants(traced_unet2)
    log(f"traced in {time.time() - phase:.1f} s; replaced {n} device constants with the "
        "inputs' device")

    # TF32 off while checking (TF32 rounds float32 matmuls and convolutions to 10 bits); a
    # check that fails ends the export with its message, before OUTDIR is touched.
    with tf32_disabled():
        try:
            phase = time.time()
            log("verifying the traces")
            verify_unet(traced_unet, unet, layers, text_dim)
            verify_maps_explicitly(traced_unet, unet, layers, text_dim)
            verify_gradients(traced_unet, unet, layers, text_dim)
            verify_text_encoder(traced_te, text_encoder, spiece)
            if traced_unet2 is not None:
                verify_unet_stage2(traced_unet2, stage2[0], text_dim)
            log(f"verified in {time.time() - phase:.1f} s")

            manifest = build_manifest(args, unet, text_encoder, spiece, scheduler_config, layers,
                                      stage2)
            files = {"unet.pt": traced_unet.save, "text_encoder.pt": traced_te.save,
                     "spiece.model": lambda path: shutil.copyfile(spiece, path)}
            if traced_unet2 is not None:
                files[STAGE2_FILE] = traced_unet2.save

            def verify(d):
                verify_reloaded(d, traced_unet, traced_te, unet, text_dim, spiece)
                if traced_unet2 is not None:
                    verify_reloaded_stage2(d, traced_unet2, stage2[0], text_dim)

            phase = time.time()
            log(f"writing {args.outdir}")
            write_bundle(args.outdir, files, manifest, verify, keep_stage2=not args.no_stage2)
            log(f"written and checked in {time.time() - phase:.1f} s")
        except ToleranceError as e:
            raise SystemExit(f"error: {e}")
    log(f"done in {time.time() - started:.1f} s")
    return 0

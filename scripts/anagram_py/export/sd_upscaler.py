"""Export Stable Diffusion's x4 upscaler (StableDiffusionUpscalePipeline, docs/stage3.md) as the
stage III folder of a bundle: the command line of scripts/export/export_sd_upscaler.py.

Phases, as the IF exporter's: load (a local diffusers folder) or build (--random-init x4 /
--tiny, sd_upscaler_configs, fixed seeds); trace the UNet, the text encoder and the VAE decoder;
make their graphs device-independent; check the traces against eager diffusers/transformers
(several batches, timesteps, noise levels and two latent sizes); write BUNDLE/stage3/ beside a
temporary name, reload and check the files, rename into place; then add the "stage3" object and
the files' hashes to BUNDLE/manifest.json (every other entry kept).
"""
import argparse
import filecmp
import json
import os
import shutil
import tempfile
import time

import torch

from .. import manifest as bm
from .. import sd_upscaler_configs as cfg
from ..glide_clip import BPETokenizer
from ..paths import TINY_BUNDLE
from ..tolerance import ToleranceError, check_close, max_difference, tf32_disabled, trace_precision
from .if_bundle import jsonable
from .if_common import DTYPES
from .if_sources import check_dtype_supported
from .if_trace import device_constants, remove_device_constants, trace_quietly

FOLDER = "stage3"
UNET_FILE = f"{FOLDER}/unet.pt"
TEXT_FILE = f"{FOLDER}/text_encoder.pt"
VAE_FILE = f"{FOLDER}/vae_decoder.pt"
BPE_FILE = f"{FOLDER}/bpe_simple_vocab_16e6.txt.gz"
BPE_SOURCE = os.path.join(TINY_BUNDLE, "bpe_simple_vocab_16e6.txt.gz")
SHARED_BPE_FILE = os.path.basename(BPE_FILE)  # the CLIP guidance's copy at the bundle's top
TEXT_TOKENS = bm.TEXT_TOKENS
SEEDS = {"unet": 30, "vae": 31, "text": 32}
DDIM_KEYS = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "clip_sample",
             "set_alpha_to_one", "steps_offset", "prediction_type", "thresholding",
             "dynamic_thresholding_ratio", "clip_sample_range", "sample_max_value",
             "timestep_spacing", "rescale_betas_zero_snr"]
LOW_RES_KEYS = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule",
                "variance_type", "clip_sample", "prediction_type"]
PROMPTS = ["a photo of a dog", "", "an oil painting of a snowy mountain village, " * 8, "cat"]


def log(message):
    print(f"[export_sd_upscaler] {message}", flush=True)


# ----------------------------------------------------------------------------- modules
class Stage3UNet(torch.nn.Module):
    """forward(sample (B,7,h,w), timestep 0-d int64, text (B,77,D), class_labels (B,) int64)
    -> (B,4,h,w): channels 0-3 of sample the (scaled) latents x_t, 4-6 the noise-augmented
    low-res picture; class_labels the augmentation noise level; returns v (v_prediction)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, class_labels):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         class_labels=class_labels, return_dict=False)[0]


class Stage3TextEncoder(torch.nn.Module):
    """forward(input_ids (B,77) int64) -> last_hidden_state (B,77,D): the pipeline's
    text_encoder(ids)[0] with no attention mask (its config has no use_attention_mask)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids):
        return self.encoder(input_ids, return_dict=False)[0]


class Stage3VaeDecoder(torch.nn.Module):
    """forward(latents (B,4,h,w)) -> picture (B,3,4h,4w) in about [-1, 1]: the pipeline's
    vae.decode(latents / scaling_factor) (the division is inside). Holds only the decoder half
    (post_quant_conv and decoder, what AutoencoderKL._decode runs without tiling or slicing), so
    the saved file carries no encoder weights; the exporter checks it against vae.decode."""

    def __init__(self, vae):
        super().__init__()
        self.post_quant_conv = vae.post_quant_conv
        self.decoder = vae.decoder
        self.scale = float(vae.config.scaling_factor)

    def forward(self, latents):
        return self.decoder(self.post_quant_conv(latents / self.scale))


# ----------------------------------------------------------------------------- sources
def _count(module):
    return sum(p.numel() for p in module.parameters())


def build_random(variant):
    """UNet, VAE, text encoder and both scheduler configs of VARIANT with random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    parts = cfg.VARIANTS[variant]
    torch.manual_seed(SEEDS["unet"])
    unet = UNet2DConditionModel(**parts["unet"])
    torch.manual_seed(SEEDS["vae"])
    vae = AutoencoderKL(**parts["vae"])
    torch.manual_seed(SEEDS["text"])
    text = CLIPTextModel(CLIPTextConfig(**parts["text"]))
    return dict(unet=unet, vae=vae, text=text, scheduler=dict(cfg.SCHEDULER_X4),
                low_res=dict(cfg.LOW_RES_SCHEDULER_X4), max_noise_level=cfg.MAX_NOISE_LEVEL,
                source=parts["source"], tokenizer=None)


def load_folder(source):
    """The parts of a local StableDiffusionUpscalePipeline folder (save_pretrained layout)."""
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    log(f"loading {source}")
    index = {}
    if os.path.isfile(os.path.join(source, "model_index.json")):
        with open(os.path.join(source, "model_index.json")) as f:
            index = json.load(f)
    sched = index.get("scheduler", [None, "DDIMScheduler"])[1]
    if sched != "DDIMScheduler":
        raise SystemExit(f"error: {source}: scheduler is {sched}; stage III expects the "
                         "upscaler's DDIMScheduler")
    tokenizer = None
    if os.path.isdir(os.path.join(source, "tokenizer")):
        from transformers import CLIPTokenizer
        tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")
    return dict(
        unet=UNet2DConditionModel.from_pretrained(source, subfolder="unet"),
        vae=AutoencoderKL.from_pretrained(source, subfolder="vae"),
        text=CLIPTextModel.from_pretrained(source, subfolder="text_encoder"),
        scheduler=dict(DDIMScheduler.from_pretrained(source, subfolder="scheduler").config),
        low_res=dict(DDPMScheduler.from_pretrained(source, subfolder="low_res_scheduler").config),
        max_noise_level=int(index.get("max_noise_level", cfg.MAX_NOISE_LEVEL)),
        source=source, tokenizer=tokenizer)


def check_parts(parts):
    unet, vae, text = parts["unet"], parts["vae"], parts["text"]
    c = unet.config
    if c.in_channels != vae.config.latent_channels + 3 or c.out_channels != vae.config.latent_channels:
        raise SystemExit(f"error: UNet {c.in_channels} -> {c.out_channels} channels does not fit "
                         f"a VAE of {vae.config.latent_channels} latent channels (expected "
                         "latents + 3 picture channels in, latents out)")
    if c.num_class_embeds is None or c.class_embed_type is not None:
        raise SystemExit("error: the UNet must take the noise level through a class embedding "
                         "table (num_class_embeds, no class_embed_type)")
    if c.cross_attention_dim != text.config.hidden_size:
        raise SystemExit(f"error: UNet expects {c.cross_attention_dim}-d text states, the text "
                         f"encoder gives {text.config.hidden_size}")
    if parts["scheduler"].get("prediction_type") != "v_prediction":
        log(f"  note: scheduler prediction_type is {parts['scheduler'].get('prediction_type')}")


def check_tokenizer(tokenizer, bpe):
    """A source folder's CLIPTokenizer must give the ids of the bundle's BPE tokenizer (with
    0 padding, the OpenCLIP convention) on prompts without '!'."""
    if tokenizer is None:
        log("  no tokenizer/ in the source: the tokenizer is not compared")
        return
    ids, _ = bpe.tokens_and_lengths(PROMPTS, TEXT_TOKENS)
    theirs = tokenizer(PROMPTS, padding="max_length", max_length=TEXT_TOKENS, truncation=True,
                       return_tensors="pt").input_ids
    if not torch.equal(ids, theirs):
        raise SystemExit("error: the source's tokenizer does not give the BPE tokenizer's ids "
                         f"(pad_token_id {tokenizer.pad_token_id}); see docs/stage3.md")
    log("  source tokenizer agrees with the BPE tokenizer on the check prompts")


# ----------------------------------------------------------------------------- inputs
def unet_inputs(unet, batch, size, dtype, device, seed, timestep, levels):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, unet.config.in_channels, size, size, generator=g)
    s = torch.randn(batch, TEXT_TOKENS, unet.config.cross_attention_dim, generator=g)
    return (x.to(device=device, dtype=dtype), torch.tensor(timestep, device=device),
            s.to(device=device, dtype=dtype), torch.tensor(levels, device=device))


def latents(vae, batch, size, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, vae.config.latent_channels, size, size, generator=g)
    return z.to(device=device, dtype=dtype)


# ----------------------------------------------------------------------------- trace / verify
def trace_all(parts, bpe, trace_size, device):
    unet, vae, text = parts["unet"], parts["vae"], parts["text"]
    log(f"tracing the UNet (batch 2, {trace_size}x{trace_size} latents)")
    u = trace_quietly(lambda: torch.jit.trace(Stage3UNet(unet).eval(), unet_inputs(
        unet, 2, trace_size, unet.dtype, device, 0, 500, [20, 100]), check_trace=False))
    log("tracing the text encoder (batch 2)")
    ids, _ = bpe.tokens_and_lengths(PROMPTS[:2], TEXT_TOKENS)
    t = trace_quietly(lambda: torch.jit.trace(Stage3TextEncoder(text).eval(), (ids.to(device),),
                                              check_trace=False))
    log(f"tracing the VAE decoder (batch 1, {trace_size}x{trace_size} latents)")
    v = trace_quietly(lambda: torch.jit.trace(Stage3VaeDecoder(vae).eval(), (latents(
        vae, 1, trace_size, vae.dtype, device, 1),), check_trace=False))
    n = sum(remove_device_constants(m) for m in (u, t, v))
    log(f"replaced {n} device constants with the inputs' device")
    return u, t, v


def finite_pair(compute, what, tries=3):
    """compute() -> (expected, got); recomputed while either holds a non-finite value.

    On the development machine (Debian's torch 1.13.0a0, CPU) a random-weight UNet forward now
    and then gives NaN in eager diffusers and in the trace alike, for fixed weights and inputs
    (about one model instance in four; not reproducible with forward hooks installed, nor tied
    to mkldnn, OpenBLAS threads or diffusers' uninitialised baddbmm input): see docs/stage3.md.
    A recomputation usually gives finite values; three non-finite tries end the export."""
    for attempt in range(tries):
        expected, got = compute()
        if torch.isfinite(expected).all() and torch.isfinite(got).all():
            if attempt:
                log(f"  note: {what} was non-finite {attempt} time(s) before (recomputed)")
            return expected, got
    raise SystemExit(f"error: {what}: non-finite output {tries} times (eager finite: "
                     f"{bool(torch.isfinite(expected).all())}, traced finite: "
                     f"{bool(torch.isfinite(got).all())}); see docs/stage3.md")


def unet_cases(sizes):
    """(batch, latent size, timestep, noise levels, seed)."""
    a, b = sizes
    return [(1, a, 999, [20], 41), (2, a, 500, [0, 350], 42), (4, b, 1, [20, 20, 20, 20], 43),
            (2, b, 250, [999, 5], 44)]


def verify_traces(traced, parts, bpe, sizes):
    """The traces against eager diffusers / transformers; returns the worst difference of each."""
    u, t, v = traced
    unet, vae, text = parts["unet"], parts["vae"], parts["text"]
    device, worst = unet.device, {"unet": 0.0, "text_encoder": 0.0, "vae_decoder": 0.0}
    for batch, size, timestep, levels, seed in unet_cases(sizes):
        inputs = unet_inputs(unet, batch, size, unet.dtype, device, seed, timestep, levels)
        with torch.no_grad():
            expected, got = finite_pair(lambda: (unet(
                inputs[0], inputs[1], encoder_hidden_states=inputs[2],
                class_labels=inputs[3]).sample, u(*inputs)), f"UNet batch {batch}")
        d = check_close(got, expected, device, unet.dtype,
                        f"traced UNet and eager diffusers (batch {batch}, {size}x{size}, t={timestep})")
        worst["unet"] = max(worst["unet"], d)
        log(f"  unet batch {batch} {size}x{size} t={timestep} levels {levels}: "
            f"|traced-eager| {d:.2e} (|v| up to {expected.abs().max().item():.3g})")
    inputs = unet_inputs(unet, 2, sizes[0], unet.dtype, device, 45, 400, [0, 350])
    with torch.no_grad():
        a, b = finite_pair(lambda: (u(*inputs), u(inputs[0], inputs[1], inputs[2],
                                                   inputs[3].flip(0))), "UNet noise-level check")
    if not max_difference(a, b) > 0:
        raise SystemExit("error: the traced UNet ignores its class labels (noise level)")
    for prompts in (PROMPTS[:1], PROMPTS):
        ids, _ = bpe.tokens_and_lengths(prompts, TEXT_TOKENS)
        ids = ids.to(device)
        with torch.no_grad():
            expected = text(ids).last_hidden_state
            got = t(ids)
        d = check_close(got, expected, device, text.dtype,
                        f"traced and eager text encoder (batch {len(prompts)})")
        worst["text_encoder"] = max(worst["text_encoder"], d)
        log(f"  text encoder batch {len(prompts)}: |traced-eager| {d:.2e}")
    for batch, size in ((1, sizes[0]), (2, sizes[1])):
        z = latents(vae, batch, size, vae.dtype, device, 46 + batch)
        with torch.no_grad():
            expected, got = finite_pair(lambda: (vae.decode(z / vae.config.scaling_factor).sample,
                                                 v(z)), f"VAE decoder batch {batch}")
        d = check_close(got, expected, device, vae.dtype,
                        f"traced VAE decoder and eager diffusers (batch {batch}, {size}x{size})")
        worst["vae_decoder"] = max(worst["vae_decoder"], d)
        log(f"  vae decoder batch {batch} {size}x{size} -> {tuple(got.shape[-2:])}: "
            f"|traced-eager| {d:.2e}")
    return worst


def verify_saved(folder, traced, parts, bpe, sizes):
    """The written files reproduce the traces and name no device."""
    u, t, v = traced
    unet, vae = parts["unet"], parts["vae"]
    device = unet.device
    loaded = {name: torch.jit.load(os.path.join(folder, os.path.basename(name)), map_location=device)
              for name in (UNET_FILE, TEXT_FILE, VAE_FILE)}
    inputs = unet_inputs(unet, 2, sizes[1], unet.dtype, device, 51, 100, [20, 77])
    ids, _ = bpe.tokens_and_lengths(PROMPTS[2:], TEXT_TOKENS)
    z = latents(vae, 1, sizes[1], vae.dtype, device, 52)
    with torch.no_grad():
        a, b = finite_pair(lambda: (u(*inputs), loaded[UNET_FILE](*inputs)), "saved unet.pt")
        diffs = [check_close(b, a, device, unet.dtype, "saved unet.pt and the trace"),
                 check_close(loaded[TEXT_FILE](ids.to(device)), t(ids.to(device)), device,
                             parts["text"].dtype, "saved text_encoder.pt and the trace"),
                 check_close(loaded[VAE_FILE](z), v(z), device, vae.dtype,
                             "saved vae_decoder.pt and the trace")]
    for name, module in loaded.items():
        if device_constants(module):
            raise SystemExit(f"error: {name} still holds device constants")
    log(f"  reloaded files reproduce the traces (max |diff| {max(diffs):.2e})")


# ----------------------------------------------------------------------------- manifest
def _config(model):
    if hasattr(model, "to_json_string"):
        c = json.loads(model.to_json_string())
    else:
        c = model.config.to_dict()
    for key in ("_name_or_path", "_commit_hash", "transformers_version", "_diffusers_version"):
        c.pop(key, None)
    return jsonable(c)


def bpe_vocab_name(bundle):
    """The bundle-relative name stage III's tokenizer reads: the top-level
    bpe_simple_vocab_16e6.txt.gz when the bundle already has a byte-identical copy (the CLIP
    guidance's, e.g. models/tiny-if: no second 1.3 MB copy), else stage3/'s own copy."""
    shared = os.path.join(bundle, SHARED_BPE_FILE)
    if os.path.isfile(shared) and filecmp.cmp(shared, BPE_SOURCE, shallow=False):
        return SHARED_BPE_FILE
    return BPE_FILE


def stage3_entry(parts, args, dtype_name, vae_dtype_name, bpe_vocab=BPE_FILE):
    unet, vae, text = parts["unet"], parts["vae"], parts["text"]
    latent = args.image_size // cfg.UPSCALE
    missing = [k for k in DDIM_KEYS if k not in parts["scheduler"]]
    if missing:
        raise SystemExit(f"error: the scheduler config lacks {missing}")
    return {
        "stage": 3,
        "pipeline": "StableDiffusionUpscalePipeline",
        "dtype": dtype_name,
        "image": {"size": args.image_size, "channels": 3},
        "lowres": {"size": latent, "channels": 3},
        "latent": {"size": latent, "channels": int(vae.config.latent_channels),
                   "scaling_factor": float(vae.config.scaling_factor)},
        "unet": {"file": UNET_FILE, "in_channels": int(unet.config.in_channels),
                 "out_channels": int(unet.config.out_channels),
                 "cross_attention_dim": int(unet.config.cross_attention_dim),
                 "class_labels": "noise_level", "prediction_type":
                     parts["scheduler"]["prediction_type"], "config": _config(unet)},
        "vae_decoder": {"file": VAE_FILE, "dtype": vae_dtype_name,
                        "upscale": 2 ** (len(vae.config.block_out_channels) - 1),
                        "divides_by_scaling_factor": True, "config": _config(vae)},
        "text_encoder": {"file": TEXT_FILE, "hidden_size": int(text.config.hidden_size),
                         "output": "last_hidden_state", "config": _config(text)},
        "tokenizer": {"bpe_vocab": bpe_vocab, "max_length": TEXT_TOKENS, "start_token": 49406,
                      "end_token": 49407, "pad_id": 0, "vocab_size": 49408},
        "scheduler": {k: jsonable(parts["scheduler"][k]) for k in DDIM_KEYS},
        "low_res_scheduler": {k: jsonable(parts["low_res"][k]) for k in LOW_RES_KEYS},
        "max_noise_level": int(parts["max_noise_level"]),
        "default_noise_level": cfg.DEFAULT_NOISE_LEVEL,
        "default_steps": cfg.DEFAULT_STEPS,
        "default_guidance": cfg.DEFAULT_GUIDANCE,
        "source": parts["source"],
    }


def stage3_files(entry):
    return [entry["unet"]["file"], entry["text_encoder"]["file"], entry["vae_decoder"]["file"],
            entry["tokenizer"]["bpe_vocab"]]


def update_manifest(bundle, entry, name):
    """Add "stage3" and its files' hashes to BUNDLE/manifest.json, keeping everything else; a
    folder without a manifest gets a stage III only manifest (not a complete bundle)."""
    import diffusers
    import transformers

    path = os.path.join(bundle, bm.MANIFEST)
    if os.path.isfile(path):
        m = bm.read_raw(bundle)
        if m.get("format") != bm.FORMAT or m.get("schema_version") != bm.SCHEMA_VERSION:
            raise SystemExit(f"error: {bundle} is not a schema {bm.SCHEMA_VERSION} bundle; "
                             "re-export it with export_if.py first")
    else:
        m = {"format": bm.FORMAT, "schema_version": bm.SCHEMA_VERSION, "name": name,
             "description": "stage III only (StableDiffusionUpscalePipeline); not a complete "
                            "bundle: it has no stage I", "files": {}}
    m["stage3"] = entry
    files = dict(m.get("files", {}))
    for old in [f for f in files if f.startswith(FOLDER + "/")]:
        del files[old]
    for f in stage3_files(entry):
        files[f] = bm.file_entry(os.path.join(bundle, f))
    m["files"] = files
    src = dict(m.get("source", {}))
    src["stage3_model"] = entry["source"]
    src.setdefault("exported_with", {"torch": torch.__version__.split("+")[0],
                                     "diffusers": diffusers.__version__,
                                     "transformers": transformers.__version__})
    m["source"] = src
    bm.write(bundle, m)
    return m


def write_folder(bundle, traced, verify, copy_bpe=True):
    """BUNDLE/stage3/ written beside a temporary name, checked, then renamed into place;
    copy_bpe False: no BPE vocabulary (and licence) in it (bpe_vocab_name names the shared one)."""
    os.makedirs(bundle, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".stage3-", dir=bundle)
    try:
        for module, name in zip(traced, (UNET_FILE, TEXT_FILE, VAE_FILE)):
            module.save(os.path.join(tmp, os.path.basename(name)))
        licence = BPE_SOURCE.replace(".txt.gz", ".LICENSE")
        if copy_bpe:
            shutil.copyfile(BPE_SOURCE, os.path.join(tmp, os.path.basename(BPE_FILE)))
            if os.path.isfile(licence):
                shutil.copyfile(licence, os.path.join(tmp, os.path.basename(licence)))
        verify(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        final = os.path.join(bundle, FOLDER)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------- command line
def parse_args(argv=None, doc=None):
    head, _, rest = (doc or __doc__).partition("\n\n")
    p = argparse.ArgumentParser(description=head, epilog=rest or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="SOURCE BUNDLE",
                   help="upscaler pipeline folder, then the bundle folder (with --random-init "
                        "or --tiny: only BUNDLE)")
    p.add_argument("--random-init", choices=["x4"], default=None,
                   help="the x4 upscaler's real-size architecture with random weights")
    p.add_argument("--tiny", action="store_true", help="the tiny test variant, random weights")
    p.add_argument("--image-size", type=int, default=1024,
                   help="the stage III picture side recorded in the manifest (default 1024)")
    p.add_argument("--trace-size", type=int, default=None,
                   help="latent side to trace at (default 32; 16 with --tiny); a multiple of 8")
    p.add_argument("--check-size", type=int, default=None,
                   help="second latent side the traces are checked at (default 24; 8 with --tiny)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                   help="UNet and text encoder dtype (float16 needs --device cuda); the VAE "
                        "decoder stays float32, as the pipeline upcasts it")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--name", default=None, help="bundle name if BUNDLE has no manifest")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args(argv)
    if args.random_init and args.tiny:
        p.error("--random-init and --tiny exclude each other")
    generated = args.random_init or args.tiny
    if len(args.paths) != (1 if generated else 2):
        p.error("give BUNDLE only with --random-init/--tiny, else SOURCE and BUNDLE")
    args.source, args.bundle = (None, args.paths[0]) if generated else args.paths
    args.trace_size = args.trace_size or (16 if args.tiny else 32)
    args.check_size = args.check_size or (8 if args.tiny else 24)
    for size in (args.trace_size, args.check_size):
        if size % 8:
            p.error("latent sizes must be multiples of 8 (the UNet downsamples 3 times)")
    if args.image_size % 32:
        p.error("--image-size must be a multiple of 32")
    if args.name is None:
        args.name = os.path.basename(os.path.abspath(args.bundle))
    return args


def main(argv=None, doc=None):
    args = parse_args(argv, doc)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    check_dtype_supported(dtype, device)
    if args.tiny or args.random_init:
        variant = "tiny" if args.tiny else args.random_init
        parts = build_random(variant)
        log(f"built the {variant} variant with random weights: UNet "
            f"{_count(parts['unet']) / 1e6:.1f} M, VAE decoder "
            f"{_count(parts['vae'].decoder) / 1e6:.1f} M, text encoder "
            f"{_count(parts['text']) / 1e6:.1f} M parameters")
    else:
        parts = load_folder(args.source)
    check_parts(parts)
    bpe = BPETokenizer(BPE_SOURCE)
    check_tokenizer(parts["tokenizer"], bpe)
    for key, dt in (("unet", dtype), ("text", dtype), ("vae", torch.float32)):
        parts[key] = parts[key].to(device=device, dtype=dt).eval().requires_grad_(False)
    log(f"ready in {time.time() - started:.1f} s")

    sizes = (args.trace_size, args.check_size)
    phase = time.time()
    with trace_precision(device):
        traced = trace_all(parts, bpe, args.trace_size, device)
    log(f"traced in {time.time() - phase:.1f} s")
    with tf32_disabled():
        try:
            phase = time.time()
            worst = verify_traces(traced, parts, bpe, sizes)
            log(f"verified in {time.time() - phase:.1f} s; max |traced - eager|: " +
                ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
            bpe_vocab = bpe_vocab_name(args.bundle)
            if bpe_vocab != BPE_FILE:
                log(f"  {bpe_vocab} of the bundle is byte-identical to the BPE vocabulary: "
                    "stage III names it (no copy in stage3/)")
            write_folder(args.bundle, traced,
                         lambda folder: verify_saved(folder, traced, parts, bpe, sizes),
                         copy_bpe=bpe_vocab == BPE_FILE)
        except ToleranceError as e:
            raise SystemExit(f"error: {e}")
    entry = stage3_entry(parts, args, args.dtype, "float32", bpe_vocab)
    m = update_manifest(args.bundle, entry, args.name)
    for f in stage3_files(entry):
        log(f"  {f}: {m['files'][f]['bytes']} bytes")
    log(f"done in {time.time() - started:.1f} s")
    return 0

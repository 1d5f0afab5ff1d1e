#!/usr/bin/env python3
"""Train a demo model: a small DeepFloyd-IF-architecture pixel diffusion model of glyphs or objects.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/train_demo.py \
        [--data glyphs|objects] [--out build-py/demo-glyphs-src] [--workdir build-py/demo-train] \
        [--steps 2200] [--batch-size 32] [--device cpu|cuda] [--resume] [--num-images 20000] \
        [--widths 32,64,64]

--data picks the data module: glyphs (the default; scripts/demo_glyphs.py, the
models/demo-glyphs recipe described below) or objects (scripts/demo_objects.py: emoji of
16 animals and things in the Noto Color Emoji style, the models/demo-objects recipe; its
defaults for --out, --workdir, --steps, --num-images, --seed and --widths are that
module's TRAIN_DEFAULTS, see scripts/make_demo_objects_bundle.sh). Everything else below
holds for both; with --data glyphs and the defaults the run is the one that made
models/demo-glyphs.

Data (scripts/demo_glyphs.py): --num-images pictures of the 16 glyphs of
demo_glyphs.GLYPHS, rendered here from the TRAIN_FONTS only (the JUDGE_FONTS are held out
for the judge), 32x32, random colours, sizes, positions and stroke widths, with captions
from templates ("the letter n", "a red digit 6"); 15% of the captions are dropped to ""
so that classifier-free guidance works.

Model: diffusers UNet2DConditionModel with IF stage I's block types (ResnetDownsample,
then SimpleCrossAttn blocks with added-KV cross-attention, "text" addition embedding,
scale-shift resnets, gelu), 6 output channels (epsilon + learned-range variance), widths
(32, 64, 64) at 32, 16 and 8 pixels, conditioned on a small T5 encoder (T5 v1.1 style,
d_model 64, 2 layers) trained jointly from scratch, with the tiny bundle's SentencePiece
tokenizer (models/tiny-if/spiece.model). IF's noise schedule (squaredcos_cap_v2, 1000
steps). Loss: the epsilon MSE plus the variational bound term of Nichol & Dhariwal's
hybrid loss for the variance channels (mean detached, KL in bits, t >= 1), the
interpolation being diffusers' learned_range one. Two phases: until --phase2-step the
plain epsilon MSE; from then on each sample's epsilon MSE is weighted by
clamp(1/SNR(t), 1, --max-weight), i.e. the x0 error at high noise levels counts more (the
first phase learns to denoise; with the plain loss the model hardly learns to use its
caption, because at the noise levels where the caption matters an epsilon error costs
little). AdamW, warm-up, gradient clipping, EMA of the weights (the EMA is what gets
written).

Deterministic: everything comes from --seed; the batch of step i is drawn from a
generator seeded with (seed, i), so a run resumed from a checkpoint (--resume; written
every --ckpt-every steps to WORKDIR/ckpt.pt) gives the same weights as an uninterrupted
one. Progress: one line per --log-every steps; WORKDIR/preview_NNNNNN.png shows samples
of a few prompts (30 DDPM steps, guidance 7) every --preview-every steps.

Writes OUT as a diffusers IF pipeline folder (unet/, text_encoder/, tokenizer/,
scheduler/, model_index.json), which scripts/export_if.py exports to a bundle
(scripts/make_demo_bundle.sh does the whole chain).
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_glyphs as dg  # noqa: E402  (main() rebinds dg to the --data module)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 77
T5_D_MODEL = 64

UNET_CONFIG = dict(
    sample_size=dg.SIZE,
    in_channels=3,
    out_channels=6,
    layers_per_block=1,
    block_out_channels=[32, 64, 64],
    down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                      "SimpleCrossAttnDownBlock2D"],
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    up_block_types=["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                    "ResnetUpsampleBlock2D"],
    cross_attention_dim=64,
    encoder_hid_dim=T5_D_MODEL,
    encoder_hid_dim_type="text_proj",
    attention_head_dim=32,
    addition_embed_type="text",
    addition_embed_type_num_heads=2,
    cross_attention_norm="group_norm",
    resnet_time_scale_shift="scale_shift",
    act_fn="gelu",
    norm_num_groups=8,
)

T5_CONFIG = dict(
    vocab_size=1100, d_model=T5_D_MODEL, d_kv=16, d_ff=128, num_layers=2,
    num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=32,
    relative_attention_max_distance=128, dropout_rate=0.0, layer_norm_epsilon=1e-6,
    initializer_factor=1.0, feed_forward_proj="gated-gelu", is_encoder_decoder=True,
    tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
)

# IF stage I's DDPMScheduler (as scripts/make_tiny_model.py).
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
    beta_end=0.02, variance_type="learned_range", prediction_type="epsilon",
    thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5,
    clip_sample=True, clip_sample_range=1.0, timestep_spacing="leading", steps_offset=0,
)

GLYPH_DEFAULTS = dict(out="build-py/demo-glyphs-src", workdir="build-py/demo-train", steps=2200,
                      num_images=20000, seed=20250410, widths=[32, 64, 64], phase2_step=800)

PREVIEW_PROMPTS = ["the letter n", "the letter z", "the digit 6", "the digit 9",
                   "the letter m", "the letter w", "a red letter a", "the letter s"]


def make_tokenizer():
    from transformers import T5Tokenizer
    return T5Tokenizer(vocab_file=os.path.join(ROOT, "models", "tiny-if", "spiece.model"),
                       extra_ids=100, model_max_length=MAX_LENGTH, legacy=True)


def tokenize(tokenizer, texts):
    # IFPipeline.encode_prompt: lower-cased, stripped, padded to 77 with an attention mask.
    enc = tokenizer([t.lower().strip() for t in texts], padding="max_length",
                    max_length=MAX_LENGTH, truncation=True, add_special_tokens=True,
                    return_tensors="pt")
    return enc.input_ids, enc.attention_mask


class Schedule:
    def __init__(self, device):
        from diffusers import DDPMScheduler
        s = DDPMScheduler(**SCHEDULER_CONFIG)
        self.betas = s.betas.double()
        ab = s.alphas_cumprod.double()
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        post_var = self.betas * (1 - ab_prev) / (1 - ab)
        self.sqrt_ab = ab.sqrt().float().to(device)
        self.sqrt_1mab = (1 - ab).sqrt().float().to(device)
        self.coef_x0 = (self.betas * ab_prev.sqrt() / (1 - ab)).float().to(device)
        self.coef_xt = ((1 - ab_prev) * (1 - self.betas).sqrt() / (1 - ab)).float().to(device)
        # log of the posterior variance, first entry replaced by the second (iDDPM)
        self.log_post = torch.log(torch.cat([post_var[1:2], post_var[1:]])).float().to(device)
        self.log_beta = torch.log(self.betas).float().to(device)


def vb_term(sched, out, x0, xt, t):
    """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) in bits per dimension, mean detached."""
    eps = out[:, :3].detach()
    frac = (out[:, 3:] + 1) / 2
    b = lambda v: v[t].view(-1, 1, 1, 1)  # noqa: E731
    x0_pred = (xt - b(sched.sqrt_1mab) * eps) / b(sched.sqrt_ab)
    mean_p = b(sched.coef_x0) * x0_pred + b(sched.coef_xt) * xt
    mean_q = b(sched.coef_x0) * x0 + b(sched.coef_xt) * xt
    logv_q = b(sched.log_post)
    logv_p = frac * b(sched.log_beta) + (1 - frac) * logv_q
    kl = 0.5 * (-1 + logv_p - logv_q + torch.exp(logv_q - logv_p)
                + (mean_q - mean_p) ** 2 * torch.exp(-logv_p))
    kl = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
    return torch.where(t > 0, kl, torch.zeros_like(kl))


def data_module(name):
    """The data module of --data NAME (scripts/demo_NAME.py)."""
    import importlib
    if name not in ("glyphs", "objects"):
        raise SystemExit(f"unknown --data {name!r} (glyphs or objects)")
    return importlib.import_module("demo_" + name)


def unet_config(widths):
    return dict(UNET_CONFIG, sample_size=dg.SIZE, block_out_channels=list(widths))


def build_models():
    from diffusers import UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(ARGS.seed)
    unet = UNet2DConditionModel(**unet_config(ARGS.widths))
    t5 = T5EncoderModel(T5Config(**T5_CONFIG))
    return unet, t5


@torch.no_grad()
def sample_preview(unet, t5, tokenizer, prompts, device, steps=30, guidance=7.0, seed=0):
    from diffusers import DDPMScheduler
    sched = DDPMScheduler(**SCHEDULER_CONFIG)
    sched.set_timesteps(steps)
    ids, mask = tokenize(tokenizer, prompts + [""] * len(prompts))
    states = t5(ids.to(device), attention_mask=mask.to(device))[0]
    g = torch.Generator().manual_seed(seed)
    n = len(prompts)
    x = torch.randn(n, 3, dg.SIZE, dg.SIZE, generator=g).to(device)
    for t in sched.timesteps:
        out = unet(torch.cat([x, x]), t.to(device), encoder_hidden_states=states).sample
        c, u = out[:n], out[n:]
        eps = u[:, :3] + guidance * (c[:, :3] - u[:, :3])
        x = sched.step(torch.cat([eps, c[:, 3:]], 1), t, x, generator=g).prev_sample
    return x


def save_pipeline(outdir, unet, t5, tokenizer):
    import diffusers
    from diffusers import DDPMScheduler
    outdir = os.path.abspath(outdir)
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".demo-glyphs-", dir=parent)
    try:
        pipe = os.path.join(tmp, "pipeline")
        tokenizer.save_pretrained(os.path.join(pipe, "tokenizer"))
        t5.save_pretrained(os.path.join(pipe, "text_encoder"))
        unet.save_pretrained(os.path.join(pipe, "unet"))
        DDPMScheduler(**SCHEDULER_CONFIG).save_pretrained(os.path.join(pipe, "scheduler"))
        index = {
            "_class_name": "IFPipeline", "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", "DDPMScheduler"],
            "text_encoder": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "T5Tokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "watermarker": [None, None],
        }
        with open(os.path.join(pipe, "model_index.json"), "w") as f:
            json.dump(index, f, indent=2, sort_keys=True)
            f.write("\n")
        if os.path.exists(outdir):
            shutil.rmtree(outdir)
        os.rename(pipe, outdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv=None):
    global ARGS, dg
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default="glyphs", help="glyphs (default) or objects")
    p.add_argument("--out", default=None, help="default: build-py/demo-glyphs-src (glyphs)")
    p.add_argument("--workdir", default=None, help="default: build-py/demo-train (glyphs)")
    p.add_argument("--steps", type=int, default=None, help="default: 2200 (glyphs)")
    p.add_argument("--widths", default=None,
                   help="UNet block widths at full, 1/2 and 1/4 size; default 32,64,64 (glyphs)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--num-images", type=int, default=None, help="default: 20000 (glyphs)")
    p.add_argument("--caption-dropout", type=float, default=0.15)
    p.add_argument("--phase2-step", type=int, default=None,
                   help="from this step on, weight the epsilon MSE of each sample by "
                        "clamp(1/SNR(t), 1, --max-weight) (high-noise emphasis); default 800 (glyphs)")
    p.add_argument("--max-weight", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=None, help="default: 20250410 (glyphs)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--resume", action="store_true", help="continue from WORKDIR/ckpt.pt")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--preview-every", type=int, default=250, help="0: no previews")
    ARGS = args = p.parse_args(argv)
    dg = data_module(args.data)
    defaults = GLYPH_DEFAULTS if args.data == "glyphs" else dg.TRAIN_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            if key in ("out", "workdir"):
                value = os.path.join(ROOT, value)
            setattr(args, key, value)
    if isinstance(args.widths, str):
        args.widths = [int(w) for w in args.widths.split(",")]
    preview_prompts = getattr(dg, "PREVIEW_PROMPTS", PREVIEW_PROMPTS)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    os.makedirs(args.workdir, exist_ok=True)

    t0 = time.time()
    images, labels, captions, _ = dg.make_dataset(args.num_images, dg.TRAIN_SOURCE, args.seed)
    images = dg.to_model(images)
    tokenizer = make_tokenizer()
    uniq = sorted(set(captions)) + [""]
    index = {c: i for i, c in enumerate(uniq)}
    cap_idx = torch.tensor([index[c] for c in captions])
    uniq_ids, uniq_mask = tokenize(tokenizer, uniq)
    empty = index[""]
    print(f"[train_demo] {args.data}: {args.num_images} pictures, {len(uniq) - 1} distinct "
          f"captions, rendered in {time.time() - t0:.1f} s", flush=True)

    unet, t5 = build_models()
    unet.to(device).train()
    t5.to(device).train()
    params = list(unet.parameters()) + list(t5.parameters())
    ema = [q.detach().clone() for q in params]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sched = Schedule(device)
    n_unet = sum(q.numel() for q in unet.parameters())
    n_t5 = sum(q.numel() for q in t5.parameters())
    print(f"[train_demo] UNet {n_unet / 1e6:.2f} M parameters, T5 {n_t5 / 1e6:.2f} M", flush=True)

    ckpt_path = os.path.join(args.workdir, "ckpt.pt")
    start, elapsed = 0, 0.0
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        unet.load_state_dict(ck["unet"])
        t5.load_state_dict(ck["t5"])
        opt.load_state_dict(ck["opt"])
        for e, v in zip(ema, ck["ema"]):
            e.copy_(v)
        start, elapsed = ck["step"], ck.get("elapsed", 0.0)
        print(f"[train_demo] resumed at step {start} ({elapsed:.0f} s of training so far)", flush=True)

    def swap_ema():
        for q, e in zip(params, ema):
            tmp = q.detach().clone()
            q.data.copy_(e)
            e.copy_(tmp)

    def checkpoint(step):
        atomic_save({"unet": unet.state_dict(), "t5": t5.state_dict(), "opt": opt.state_dict(),
                     "ema": ema, "step": step, "elapsed": elapsed, "args": vars(args)}, ckpt_path)

    n = images.shape[0]
    run_start, loss_acc, mse_acc, vb_acc, cnt = time.time(), 0.0, 0.0, 0.0, 0
    for step in range(start, args.steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        idx = torch.randint(0, n, (args.batch_size,), generator=g)
        t = torch.randint(0, 1000, (args.batch_size,), generator=g)
        noise = torch.randn(args.batch_size, 3, dg.SIZE, dg.SIZE, generator=g)
        drop = torch.rand(args.batch_size, generator=g) < args.caption_dropout
        ci = torch.where(drop, torch.full_like(cap_idx[idx], empty), cap_idx[idx])
        x0 = images[idx].to(device)
        t, noise = t.to(device), noise.to(device)
        xt = sched.sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sched.sqrt_1mab[t].view(-1, 1, 1, 1) * noise
        states = t5(uniq_ids[ci].to(device), attention_mask=uniq_mask[ci].to(device))[0]
        out = unet(xt, t, encoder_hidden_states=states).sample
        per = (out[:, :3] - noise).pow(2).mean(dim=(1, 2, 3))
        if step >= args.phase2_step:
            # 1/SNR(t) = (1 - abar) / abar: the epsilon MSE times this is the x0 MSE. The
            # plain epsilon loss hardly rewards getting x0 right at high noise, where the
            # picture shows nothing yet and only the caption says which glyph to draw.
            w = (sched.sqrt_1mab[t] / sched.sqrt_ab[t]).pow(2).clamp(1.0, args.max_weight)
            mse = (w * per).mean()
        else:
            mse = per.mean()
        vb = vb_term(sched, out, x0, xt, t).mean()
        loss = mse + vb
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, q in zip(ema, params):
                e.mul_(decay).add_(q.detach(), alpha=1 - decay)
        loss_acc += loss.item(); mse_acc += mse.item(); vb_acc += vb.item(); cnt += 1
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            now = time.time()
            total = elapsed + (now - run_start)
            rate = total / max(1, done)
            print(f"[train_demo] step {done}/{args.steps} loss {loss_acc / cnt:.4f} "
                  f"(mse {mse_acc / cnt:.4f} vb {vb_acc / cnt:.4f}) lr {lr:.2e} "
                  f"{rate:.2f} s/step, {total / 60:.1f} min, ~{(args.steps - done) * rate / 60:.1f} min left",
                  flush=True)
            loss_acc = mse_acc = vb_acc = 0.0
            cnt = 0
        if done % args.ckpt_every == 0 or done == args.steps:
            elapsed += time.time() - run_start
            run_start = time.time()
            checkpoint(done)
        if args.preview_every and (done % args.preview_every == 0 or done == args.steps):
            elapsed += time.time() - run_start
            swap_ema()
            unet.eval(); t5.eval()
            x = sample_preview(unet, t5, tokenizer, preview_prompts, device)
            unet.train(); t5.train()
            swap_ema()
            path = os.path.join(args.workdir, f"preview_{done:06d}.png")
            dg.save_grid(x, path, ncol=len(preview_prompts), scale=3)
            print(f"[train_demo] preview {path} ({', '.join(preview_prompts)})", flush=True)
            run_start = time.time()  # previews are not training time

    swap_ema()
    unet.eval(); t5.eval()
    save_pipeline(args.out, unet.cpu(), t5.cpu(), tokenizer)
    total = elapsed + (time.time() - run_start)
    with open(os.path.join(args.workdir, "train_time.json"), "w") as f:
        json.dump({"steps": args.steps, "training_seconds": round(total, 1)}, f)
    print(f"[train_demo] wrote {args.out} (EMA weights); {total / 60:.1f} min of training", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

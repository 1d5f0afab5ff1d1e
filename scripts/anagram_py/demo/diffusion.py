"""The demo diffusion model's training (scripts/demo/train_demo.py, whose docstring describes
the recipe): the model built from if_configs, IF's schedule and the hybrid loss's variational
bound term, preview sampling, the training loop, and the diffusers pipeline folder it writes."""
import argparse
import json
import math
import os
import time

import torch

from .. import if_configs
from ..diffusers_folder import write_pipeline
from ..paths import ROOT, TINY_BUNDLE
from .data import data_module

MAX_LENGTH = 77
T5_D_MODEL = 64

# The glyph model's recipe (models/demo-glyphs); the object model's is objects.TRAIN_DEFAULTS.
GLYPH_DEFAULTS = dict(out="build-py/demo-glyphs-src", workdir="build-py/demo-train", steps=2200,
                      num_images=20000, seed=20250410, widths=[32, 64, 64], phase2_step=800)

PREVIEW_PROMPTS = ["the letter n", "the letter z", "the digit 6", "the digit 9",
                   "the letter m", "the letter w", "a red letter a", "the letter s"]


def unet_config(widths, sample_size):
    """The demo UNet: IF stage I's blocks at `widths` (one layer per block), added-KV
    cross-attention of width 64 over the T5's 64-wide states, heads of 32, 2 text heads,
    8 normalisation groups."""
    return if_configs.stage1_unet(widths, 1, cross_attention_dim=64, text_dim=T5_D_MODEL,
                                  head_dim=32, text_heads=2, norm_groups=8,
                                  sample_size=sample_size)


# T5 v1.1 style: vocabulary of the tiny bundle's SentencePiece model, d_model 64, 2 layers.
T5_CONFIG = if_configs.t5_encoder(1100, T5_D_MODEL, 16, 128, 2, 4, dropout_rate=0.0)


def make_tokenizer():
    from transformers import T5Tokenizer
    return T5Tokenizer(vocab_file=os.path.join(TINY_BUNDLE, "spiece.model"),
                       extra_ids=100, model_max_length=MAX_LENGTH, legacy=True)


def tokenize(tokenizer, texts):
    # IFPipeline.encode_prompt: lower-cased, stripped, padded to 77 with an attention mask.
    enc = tokenizer([t.lower().strip() for t in texts], padding="max_length",
                    max_length=MAX_LENGTH, truncation=True, add_special_tokens=True,
                    return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def scheduler():
    """IF stage I's DDPMScheduler."""
    from diffusers import DDPMScheduler
    return DDPMScheduler(**if_configs.STAGE1_SCHEDULER)


class Schedule:
    def __init__(self, device):
        s = scheduler()
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


def build_models(seed, widths, sample_size):
    """The UNet and the T5 encoder, initialised from `seed` (in that order)."""
    from diffusers import UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**unet_config(widths, sample_size))
    t5 = T5EncoderModel(T5Config(**T5_CONFIG))
    return unet, t5


@torch.no_grad()
def sample_preview(unet, t5, tokenizer, prompts, device, size, steps=30, guidance=7.0, seed=0):
    sched = scheduler()
    sched.set_timesteps(steps)
    ids, mask = tokenize(tokenizer, prompts + [""] * len(prompts))
    states = t5(ids.to(device), attention_mask=mask.to(device))[0]
    g = torch.Generator().manual_seed(seed)
    n = len(prompts)
    x = torch.randn(n, 3, size, size, generator=g).to(device)
    for t in sched.timesteps:
        out = unet(torch.cat([x, x]), t.to(device), encoder_hidden_states=states).sample
        c, u = out[:n], out[n:]
        eps = u[:, :3] + guidance * (c[:, :3] - u[:, :3])
        x = sched.step(torch.cat([eps, c[:, 3:]], 1), t, x, generator=g).prev_sample
    return x


def save_pipeline(outdir, unet, t5, tokenizer):
    """OUTDIR as a diffusers IFPipeline folder (what scripts/export/export_if.py reads)."""
    write_pipeline(outdir, "IFPipeline", tokenizer=tokenizer, text_encoder=t5, unet=unet,
                   scheduler=scheduler())


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def parse_args(argv=None, doc=None):
    """The options of scripts/demo/train_demo.py (doc: its usage text for --help), with the
    --data module's defaults filled in."""
    doc = doc or __doc__
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
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
    args = p.parse_args(argv)
    dg = data_module(args.data)
    defaults = GLYPH_DEFAULTS if args.data == "glyphs" else dg.TRAIN_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            if key in ("out", "workdir"):
                value = os.path.join(ROOT, value)
            setattr(args, key, value)
    if isinstance(args.widths, str):
        args.widths = [int(w) for w in args.widths.split(",")]
    return args


def main(argv=None, doc=None):
    args = parse_args(argv, doc)
    return train(args)


def train(args):
    """Train as scripts/demo/train_demo.py describes; write args.out (EMA weights)."""
    dg = data_module(args.data)
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

    unet, t5 = build_models(args.seed, args.widths, dg.SIZE)
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
            x = sample_preview(unet, t5, tokenizer, preview_prompts, device, dg.SIZE)
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

"""The demo models' noise-aware CLIP (GLIDE's architecture, anagram_py.glide_clip): training
on the diffusion model's pictures at random noise levels, and its export into a bundle
(scripts/demo/train_demo_clip.py, whose docstring describes the recipe)."""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from .. import glide_clip as cm
from ..export import glide_clip as ex
from ..paths import ROOT, TINY_BUNDLE
from .data import data_module

BPE = os.path.join(TINY_BUNDLE, "bpe_simple_vocab_16e6.txt.gz")
BPE_LICENSE = os.path.join(TINY_BUNDLE, "bpe_simple_vocab_16e6.LICENSE")


def clip_config(image_size):
    """GLIDE's CLIP at the demo's widths: patches of 4, embeddings of 32, 2 blocks of 4 heads
    x 16 on each side, GLIDE's 77-token BPE text input."""
    return dict(
        cm.GLIDE_CLIP_CONFIG,
        image_size=image_size, patch_size=4, n_vocab=49408, n_embd=32,
        n_head_state_text=16, n_head_text=4, n_xf_blocks_text=2,
        n_head_state_image=16, n_head_image=4, n_xf_blocks_image=2,
    )


GLYPH_DEFAULTS = dict(workdir="build-py/demo-clip", num_images=12000, seed=20250411)


def text_features(text_enc, tokens, lengths):
    """TextEncoder.forward on the first max(lengths) positions only: the attention is
    causal and the feature is the state at lengths - 1, so the later positions cannot
    change it (same result as the full 77-token forward, much cheaper)."""
    n = int(lengths.max())
    emb = text_enc.blocks["input"]
    h = F.embedding(tokens[:, :n], emb.w_voc) + emb.w_pos[None, :n]
    for name, block in text_enc.blocks.items():
        if name.startswith("block_"):
            h = block(h, text_enc.causal_bias[:n, :n])
    z = text_enc.blocks["output"](h, lengths)
    return z / (torch.linalg.norm(z, dim=-1, keepdim=True) + 1e-12)


def parse_args(argv=None, doc=None):
    """The options of scripts/demo/train_demo_clip.py (doc: its usage text for --help), with
    the --data module's defaults filled in."""
    doc = doc or __doc__
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
    p.add_argument("--data", default="glyphs", help="glyphs (default) or objects")
    p.add_argument("--workdir", default=None, help="default: build-py/demo-clip (glyphs)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--num-images", type=int, default=None, help="default: 12000 (glyphs)")
    p.add_argument("--seed", type=int, default=None, help="default: 20250411 (glyphs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--bundle", default=None, help="export the trained CLIP into this bundle")
    p.add_argument("--export-only", action="store_true", help="only export WORKDIR's weights")
    args = p.parse_args(argv)
    dg = data_module(args.data)
    defaults = GLYPH_DEFAULTS if args.data == "glyphs" else dg.CLIP_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, os.path.join(ROOT, value) if key == "workdir" else value)
    if args.export_only and not args.bundle:
        p.error("--export-only needs --bundle")
    return args


def main(argv=None, doc=None):
    args = parse_args(argv, doc)
    if args.export_only:
        return export(args.workdir, args.bundle, args.data)
    train(args)
    if args.bundle:
        export(args.workdir, args.bundle, args.data)
    return 0


def train(args):
    """Train as scripts/demo/train_demo_clip.py describes; write WORKDIR/image_enc.pt,
    text_enc.pt and config.json."""
    dg = data_module(args.data)
    config = clip_config(dg.SIZE)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    os.makedirs(args.workdir, exist_ok=True)

    t0 = time.time()
    images, glyphs, _, colours = dg.make_dataset(args.num_images, dg.TRAIN_SOURCE, args.seed)
    glyphs = glyphs.tolist()
    images = dg.to_model(images)
    # every caption the data module's templates make: (text, class index, colour or None)
    caps = dg.all_captions()
    tok = cm.BPETokenizer(BPE)
    tokens, lengths = tok.tokens_and_lengths([c[0] for c in caps], config["max_text_len"])
    # positives[i, j]: caption j fits picture i
    cap_glyph = torch.tensor([c[1] for c in caps])
    cap_colour = [c[2] for c in caps]
    colour_names = sorted(set(c for c in cap_colour if c is not None))
    cap_col = torch.tensor([-1 if c is None else colour_names.index(c) for c in cap_colour])
    img_glyph = torch.tensor(glyphs)
    # -1: an object picture in its own colours (only colourless captions fit it)
    img_col = torch.tensor([-1 if c is None else colour_names.index(c) for c in colours])
    print(f"[train_demo_clip] {args.num_images} pictures, {len(caps)} captions, "
          f"rendered in {time.time() - t0:.1f} s", flush=True)

    torch.manual_seed(args.seed)
    image_enc = cm.ImageEncoder.from_config(config).to(device)
    text_enc = cm.TextEncoder.from_config(config).to(device)
    image_emb, text_emb = cm.ImageEmbedder(image_enc), cm.TextEmbedder(text_enc)
    log_scale = torch.nn.Parameter(torch.tensor(math.log(10.0), device=device))
    params = list(image_enc.parameters()) + list(text_enc.parameters()) + [log_scale]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    from diffusers import DDPMScheduler
    ab = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod.float().to(device)

    ckpt = os.path.join(args.workdir, "ckpt.pt")
    start = 0
    if args.resume and os.path.exists(ckpt):
        ck = torch.load(ckpt, map_location=device)
        image_enc.load_state_dict(ck["image"]); text_enc.load_state_dict(ck["text"])
        opt.load_state_dict(ck["opt"]); log_scale.data.copy_(ck["log_scale"]); start = ck["step"]
        print(f"[train_demo_clip] resumed at step {start}", flush=True)

    tokens, lengths = tokens.to(device), lengths.to(device)
    n = images.shape[0]
    t_start, acc, acc_n, hit = time.time(), 0.0, 0, 0.0
    for step in range(start, args.steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        idx = torch.randint(0, n, (args.batch_size,), generator=g)
        # Low noise levels matter most (late steps, where the views compete): t is drawn
        # uniformly half of the time and from [0, 500) otherwise.
        t = torch.randint(0, 1000, (args.batch_size,), generator=g)
        low = torch.rand(args.batch_size, generator=g) < 0.5
        t = torch.where(low, t // 2, t)
        eps = torch.randn(args.batch_size, 3, dg.SIZE, dg.SIZE, generator=g)
        quirk = (torch.rand(args.batch_size, generator=g) < 0.5).view(-1, 1, 1, 1)
        x0, t, eps = images[idx].to(device), t.to(device), eps.to(device)
        xt = ab[t].sqrt().view(-1, 1, 1, 1) * x0 + (1 - ab[t]).sqrt().view(-1, 1, 1, 1) * eps
        xin = torch.where(quirk.to(device), xt / 2 + 0.5, xt)
        zi = image_emb(xin, t)
        zt = text_features(text_enc, tokens, lengths)
        logits = log_scale.exp() * zi @ zt.t()                        # (B, C)
        pos = (cap_glyph[None] == img_glyph[idx][:, None]) & \
              ((cap_col[None] == -1) | (cap_col[None] == img_col[idx][:, None]))
        pos = pos.to(device)
        lse_all = torch.logsumexp(logits, 1)
        lse_pos = torch.logsumexp(logits.masked_fill(~pos, -1e9), 1)
        loss_i = (lse_all - lse_pos).mean()
        # text -> image within the batch: each caption present picks its pictures
        lt = logits.t()                                              # (C, B)
        present = pos.any(0)
        lse_t = torch.logsumexp(lt, 1)
        lse_tp = torch.logsumexp(lt.masked_fill(~pos.t(), -1e9), 1)
        loss_t = ((lse_t - lse_tp) * present).sum() / present.sum()
        loss = loss_i + 0.5 * loss_t
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        opt.step()
        with torch.no_grad():
            log_scale.clamp_(0, math.log(100.0))
            best = logits.argmax(1)
            hit += pos[torch.arange(len(best)), best].float()[t < 300].mean().item()
        acc += loss.item(); acc_n += 1
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            rate = (time.time() - t_start) / (done - start)
            print(f"[train_demo_clip] step {done}/{args.steps} loss {acc / acc_n:.3f} "
                  f"top-1 (t<300) {hit / acc_n:.2f} scale {log_scale.exp().item():.1f} "
                  f"{rate:.2f} s/step, ~{(args.steps - done) * rate / 60:.1f} min left", flush=True)
            acc, acc_n, hit = 0.0, 0, 0.0
        if done % args.ckpt_every == 0 or done == args.steps:
            tmp = ckpt + ".tmp"
            torch.save({"image": image_enc.state_dict(), "text": text_enc.state_dict(),
                        "opt": opt.state_dict(), "log_scale": log_scale.detach(), "step": done}, tmp)
            os.replace(tmp, ckpt)

    torch.save({k: v.cpu() for k, v in image_enc.state_dict().items()}, os.path.join(args.workdir, "image_enc.pt"))
    torch.save({k: v.cpu() for k, v in text_enc.state_dict().items()}, os.path.join(args.workdir, "text_enc.pt"))
    with open(os.path.join(args.workdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    # Cosines on clean pictures of two classes, for the record.
    with torch.no_grad():
        image_enc.eval(); text_enc.eval()
        m = min(64, len(images))
        zi = image_emb(images[:m].to(device) / 2 + 0.5, torch.zeros(m, dtype=torch.long, device=device))
        zt = text_emb(tokens, lengths)
        assert torch.allclose(zt, text_features(text_enc, tokens, lengths), atol=1e-5)
        sim = zi @ zt.t()
        texts = [c[0] for c in caps]
        own = torch.stack([sim[i, texts.index(dg.prompt_of(dg.CLASSES[glyphs[i]]))]
                           for i in range(m)])
        print(f"[train_demo_clip] clean cosine with own canonical caption: mean {own.mean():.3f}, "
              f"all captions: mean {sim.mean():.3f}", flush=True)
    print(f"[train_demo_clip] wrote {args.workdir}/image_enc.pt, text_enc.pt, config.json "
          f"({(time.time() - t0) / 60:.1f} min)", flush=True)


def export(workdir, bundle, data="glyphs"):
    """Export WORKDIR's CLIP into BUNDLE (export_clip, record_in_manifest) with the BPE
    vocabulary and its licence."""
    with open(os.path.join(workdir, "config.json")) as f:
        cfg = json.load(f)
    image_enc, text_enc = ex.build_encoders(
        cfg, ex.load_state_dict(os.path.join(workdir, "image_enc.pt")),
        ex.load_state_dict(os.path.join(workdir, "text_enc.pt")))
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    clip = ex.export_clip(image_enc, text_enc, cfg, bundle, BPE, log=log)
    what = "demo glyphs" if data == "glyphs" else "demo objects (Noto Color Emoji style)"
    clip["source"] = ("scripts/demo/train_demo_clip.py (GLIDE CLIP architecture, trained on "
                      f"the {what} at random noise levels)")
    with open(BPE_LICENSE) as f, open(os.path.join(bundle, os.path.basename(BPE_LICENSE)), "w") as g:
        g.write(f.read())
    ex.record_in_manifest(bundle, clip, log=log)
    print(json.dumps({"clip": clip}, indent=2))
    return 0

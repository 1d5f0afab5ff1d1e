#!/usr/bin/env python3
"""Check an `anagram` model bundle (docs/bundle.md) from Python.

Usage (from the repository root):
    .venv/bin/python scripts/check_bundle.py [BUNDLE] [--device cpu|cuda]
        [--golden tests/golden/sampler_baseline.pt]
        [--save-reference FILE] [--reference FILE]

Always (needs only torch, so it also runs where diffusers is not installed):
  * manifest.json has every field of docs/bundle.md and the files it names exist;
  * unet.pt: forward(sample, timestep, text) -> (B, 6, S, S) and
    forward_with_attention(...) -> (same output, (L, B, Q, 77)) for B = 1, 2, 4, loaded
    with torch.jit.load(path, map_location=DEVICE); both methods agree; the maps are
    probabilities (text columns of a softmax summed over heads: 0 < row sum < heads) and
    carry a gradient to the sample; text_encoder.pt: (B, 77) ids and mask -> (B, 77, D);
  * --save-reference FILE stores these outputs (torch.save); --reference FILE compares
    with such a file, e.g. a CPU reference against a run with --device cuda (TF32 is
    switched off for that comparison).
With diffusers and transformers installed (the project's .venv), also:
  * the traced modules against eager diffusers/transformers models rebuilt from the
    manifest's configs and the files' weights (batches 1, 2, 4), and one layer's captured
    maps against an explicit softmax(Q K^T * scale) recomputation from its weights;
  * --golden FILE: the baseline sampler replayed with the *traced* modules reproduces
    tests/golden/sampler_baseline.pt (written by scripts/golden_sampler.py from eager
    models), token ids and text states included.
Exit status 0 when every check passes.
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REQUIRED = {
    "format": str, "schema_version": int, "name": str, "description": str, "stage": int,
    "dtype": str, "image": dict, "unet": dict, "text_encoder": dict, "tokenizer": dict,
    "scheduler": dict, "source": dict,
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message, flush=True)
    if not ok:
        failures.append(message)
    return ok


def validate_manifest(bundle):
    with open(os.path.join(bundle, "manifest.json")) as f:
        m = json.load(f)
    for key, kind in REQUIRED.items():
        check(isinstance(m.get(key), kind), f"manifest.{key} is a {kind.__name__}")
    check(m["format"] == "anagram-bundle" and m["schema_version"] == 1, "format/schema 1")
    check(m["dtype"] in DTYPES, f"dtype {m['dtype']}")
    att = m["unet"]["attention"]
    check(att["num_layers"] == len(att["layers"]) > 0, f"{att['num_layers']} attention layers")
    check(att["text_tokens"] == m["tokenizer"]["max_length"] == 77, "77 text tokens")
    for key in ("in_channels", "out_channels", "cross_attention_dim"):
        check(m["unet"][key] == m["unet"]["config"][key], f"unet.{key} matches its config")
    check(m["text_encoder"]["hidden_size"] == m["text_encoder"]["config"]["d_model"],
          "text_encoder.hidden_size is d_model")
    for key in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                "variance_type", "prediction_type", "clip_sample", "clip_sample_range",
                "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
                "timestep_spacing", "steps_offset"):
        check(key in m["scheduler"], f"scheduler.{key}")
    for part in ("unet", "text_encoder", "tokenizer"):
        path = os.path.join(bundle, m[part]["file"])
        check(os.path.isfile(path), f"{m[part]['file']} exists ({os.path.getsize(path)} bytes)")
    return m


def inputs(m, batch, seed, timestep, device, dtype):
    g = torch.Generator().manual_seed(seed)
    s, c = m["image"]["size"], m["unet"]["in_channels"]
    x = torch.randn(batch, c, s, s, generator=g).to(device, dtype)
    text = torch.randn(batch, 77, m["text_encoder"]["hidden_size"], generator=g).to(device, dtype)
    return x, torch.tensor(timestep, dtype=torch.int64, device=device), text


def token_inputs(batch, vocab, device):
    g = torch.Generator().manual_seed(100 + batch)
    ids = torch.zeros(batch, 77, dtype=torch.int64)
    mask = torch.zeros(batch, 77, dtype=torch.int64)
    for b in range(batch):
        n = 1 + (7 * b + 3) % 40
        ids[b, :n - 1] = torch.randint(3, vocab, (n - 1,), generator=g)
        ids[b, n - 1] = 1
        mask[b, :n] = 1
    return ids.to(device), mask.to(device)


def run_traced(bundle, m, device):
    """Shape/semantics checks of the TorchScript files; returns outputs for --reference."""
    dtype = DTYPES[m["dtype"]]
    unet = torch.jit.load(os.path.join(bundle, m["unet"]["file"]), map_location=device).eval()
    te = torch.jit.load(os.path.join(bundle, m["text_encoder"]["file"]), map_location=device).eval()
    att = m["unet"]["attention"]
    q = att["query_resolution"] ** 2
    heads = {}
    cfg = m["unet"]["config"]
    out = {}
    for batch, t in [(1, 999), (2, 500), (4, 0)]:
        x, ts, text = inputs(m, batch, batch, t, device, dtype)
        with torch.no_grad():
            y = unet(x, ts, text)
            y2, maps = unet.forward_with_attention(x, ts, text)
        s = m["image"]["size"]
        check(tuple(y.shape) == (batch, m["unet"]["out_channels"], s, s) and y.dtype == dtype
              and y.device.type == device.type, f"forward batch {batch}: {tuple(y.shape)} {y.dtype} on {y.device}")
        check(tuple(maps.shape) == (att["num_layers"], batch, q, att["text_tokens"]),
              f"forward_with_attention maps {tuple(maps.shape)}")
        check(torch.equal(y, y2), "forward and forward_with_attention outputs are equal")
        rows = maps.float().sum(-1)
        check(bool((maps >= 0).all()) and bool(torch.isfinite(maps).all()) and rows.min() > 0,
              f"maps are finite probabilities (row sums {rows.min():.3f}..{rows.max():.3f})")
        out[f"y{batch}"], out[f"maps{batch}"] = y.cpu(), maps.cpu()
    x, ts, text = inputs(m, 2, 7, 600, device, dtype)
    x.requires_grad_(True)
    _, maps = unet.forward_with_attention(x, ts, text)
    w = torch.randn(maps.shape, generator=torch.Generator().manual_seed(8)).to(maps)
    (maps * w).sum().backward()
    check(x.grad is not None and x.grad.abs().max() > 0 and bool(torch.isfinite(x.grad).all()),
          f"maps carry a gradient to the sample (max |grad| {x.grad.abs().max():.2e})")
    out["grad"] = x.grad.cpu()
    vocab = m["text_encoder"]["config"]["vocab_size"]
    for batch in (1, 2):
        ids, mask = token_inputs(batch, vocab, device)
        with torch.no_grad():
            h = te(ids, mask)
        check(tuple(h.shape) == (batch, 77, m["text_encoder"]["hidden_size"]) and h.dtype == dtype,
              f"text encoder batch {batch}: {tuple(h.shape)} {h.dtype} on {h.device}")
        out[f"text{batch}"] = h.cpu()
    return unet, te, out


def compare_reference(out, ref_path, dtype):
    ref = torch.load(ref_path)
    tol = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 1e-2}[dtype]
    for key, expected in ref.items():
        d = (out[key].float() - expected.float()).abs().max().item()
        scale = max(1.0, expected.float().abs().max().item())
        check(d <= tol * scale, f"{key} matches the reference: max |diff| {d:.2e}")


def eager_checks(bundle, m, unet_traced, te_traced, device):
    """Traced files against eager models rebuilt from the manifest (needs diffusers)."""
    import export_if
    import golden_sampler

    dtype = DTYPES[m["dtype"]]
    unet, te, tokenizer, _ = golden_sampler.load_bundle(bundle, check_dtype=False)
    unet, te = unet.to(device, dtype), te.to(device, dtype)
    tol = export_if.TOLERANCE[dtype]
    worst = 0.0
    for batch, t in [(1, 999), (2, 500), (4, 0)]:
        x, ts, text = inputs(m, batch, 20 + batch, t, device, dtype)
        with torch.no_grad():
            worst = max(worst, (unet_traced(x, ts, text) - unet(x, ts, encoder_hidden_states=text).sample).abs().max().item())
    check(worst <= tol, f"traced UNet vs eager diffusers, batches 1/2/4: max |diff| {worst:.2e}")
    layers = m["unet"]["attention"]["layers"]
    d = export_if.verify_maps_explicitly(unet_traced, unet, layers,
                                         m["text_encoder"]["hidden_size"], max(tol, 1e-5))
    check(True, f"maps of {layers[0]} equal softmax(QK^T*scale) recomputed: max |diff| {d:.2e}")
    worst = 0.0
    for texts in (["a photo of a dog"], ["dog", "an oil painting of a cat " * 10]):
        enc = tokenizer(texts, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt")
        ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
        with torch.no_grad():
            worst = max(worst, (te_traced(ids, mask) - te(ids, attention_mask=mask)[0]).abs().max().item())
    check(worst <= tol, f"traced text encoder vs eager transformers: max |diff| {worst:.2e}")


def golden_replay(bundle, m, unet_traced, te_traced, golden_path):
    """Replay the golden baseline run with the traced modules (CPU, float32)."""
    from diffusers import DDPMScheduler

    g = {k: v for k, v in torch.jit.load(golden_path).named_buffers()}
    views = bytes(g["views_utf8"].tolist()).decode().split("\n")
    n = len(views)
    guidance = g["guidance"].item()

    def view(name, x):
        return x if name == "identity" else torch.rot90(x, 2, dims=(-2, -1))

    with torch.no_grad():
        pos = te_traced(g["prompt_ids"], g["prompt_mask"])
        neg = te_traced(g["negative_ids"], g["negative_mask"])
    check((pos - g["prompt_embeds"]).abs().max() < 1e-5 and (neg - g["negative_embeds"]).abs().max() < 1e-5,
          "golden text states reproduced by text_encoder.pt")
    text = torch.cat([neg.expand(n, -1, -1), pos])
    scheduler = DDPMScheduler(**m["scheduler"])
    scheduler.set_timesteps(int(g["num_steps"]))
    check(torch.equal(scheduler.timesteps.to(torch.int64), g["timesteps"]), "golden timesteps")
    gen = torch.Generator().manual_seed(int(g["seed"]))
    x = torch.randn((1, 3, 64, 64), generator=gen)
    check(torch.equal(x, g["initial_noise"]), "golden initial noise")
    worst = 0.0
    for i, t in enumerate(scheduler.timesteps):
        viewed = torch.cat([view(v, x) for v in views])
        with torch.no_grad():
            raw = unet_traced(torch.cat([viewed, viewed]), t, text)
        eps = sum(view(v, raw[k:k + 1])[:, :3] + guidance * (view(v, raw[n + k:n + k + 1])[:, :3]
                                                           - view(v, raw[k:k + 1])[:, :3])
                  for k, v in enumerate(views)) / n
        var = sum(view(v, raw[n + k:n + k + 1])[:, 3:] for k, v in enumerate(views)) / n
        x = scheduler.step(torch.cat([eps, var], 1), t, x, generator=gen).prev_sample
        worst = max(worst, (x - g["x_steps"][i]).abs().max().item())
    check(worst < 1e-4, f"golden baseline run replayed with the traced UNet: max |x diff| {worst:.2e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", nargs="?", default="models/tiny-if")
    p.add_argument("--device", default="cpu")
    p.add_argument("--golden", default=None)
    p.add_argument("--save-reference", default=None)
    p.add_argument("--reference", default=None)
    p.add_argument("--no-eager", action="store_true", help="skip the checks that need diffusers")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    print(f"checking {args.bundle} on {device} with torch {torch.__version__}")
    m = validate_manifest(args.bundle)
    unet, te, out = run_traced(args.bundle, m, device)
    if args.save_reference:
        torch.save(out, args.save_reference)
        print(f"  saved reference outputs to {args.save_reference}")
    if args.reference:
        compare_reference(out, args.reference, DTYPES[m["dtype"]])
    if not args.no_eager:
        try:
            import diffusers  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            print("  skip  eager comparisons (diffusers/transformers not installed)")
        else:
            eager_checks(args.bundle, m, unet, te, device)
            if args.golden:
                golden_replay(args.bundle, m, unet.cpu() if device.type != "cpu" else unet,
                              te.cpu() if device.type != "cpu" else te, args.golden)
    print(f"{'FAILED: ' + str(len(failures)) + ' check(s)' if failures else 'all checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

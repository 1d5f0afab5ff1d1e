#!/usr/bin/env python3
"""Check an `anagram` model bundle (docs/bundle.md) from Python.

Usage (from the repository root):
    .venv/bin/python scripts/tools/check_bundle.py [BUNDLE] [--device cpu|cuda]
        [--golden tests/golden/sampler_baseline.pt]
        [--golden-stage2 tests/golden/sampler_stage2.pt]
        [--save-reference FILE] [--reference FILE]

Always (needs only torch, so it also runs where diffusers is not installed):
  * manifest.json (schema 2, or schema 1 read as docs/bundle.md maps it) has every field
    of docs/bundle.md, the files it names exist, and (schema 2) each file's sha256 and size
    match the "files" object;
  * unet.pt: forward(sample, timestep, text) -> (B, 6, S, S) and
    forward_with_attention(...) -> (same output, (L, B, Q, 77)) for B = 1, 2, 4, loaded
    with torch.jit.load(path, map_location=DEVICE); both methods agree; the maps are
    probabilities (text columns of a softmax summed over heads: 0 < row sum < heads) and
    carry a gradient to the sample; text_encoder.pt: (B, 77) ids and mask -> (B, 77, D);
  * unet_stage2.pt (when the bundle has stage II): forward(sample (B, 6, S2, S2), timestep,
    text, class_labels (B,)) -> (B, 6, S2, S2) for B = 1, 2, 4, and the noise level matters;
  * --save-reference FILE stores these outputs (torch.save); --reference FILE compares
    with such a file, e.g. a CPU reference against a run with --device cuda (TF32 is
    switched off for that comparison).
With diffusers and transformers installed (the project's .venv), also:
  * the traced modules against eager diffusers/transformers models rebuilt from the
    manifest's configs and the files' weights (batches 1, 2, 4), and one layer's captured
    maps against an explicit softmax(Q K^T * scale) recomputation from its weights;
  * the stage II trace against the eager diffusers UNet rebuilt the same way;
  * --golden FILE: the baseline sampler replayed with the *traced* modules reproduces
    tests/golden/sampler_baseline.pt (written by scripts/golden/golden_sampler.py from eager
    models), token ids and text states included;
  * --golden-stage2 FILE: the stage II golden run (scripts/golden/golden_stage2.py, eager
    models) replayed with the traced unet.pt, unet_stage2.pt and text_encoder.pt (and the
    eager CLIP) reproduces tests/golden/sampler_stage2.pt.
Exit status 0 when every check passes.
"""
import argparse
import os
import sys

import torch

from anagram_py import manifest as bm
from anagram_py.tolerance import (ToleranceError, allowed_difference, max_difference,
                                  max_magnitude, tf32_disabled)

REQUIRED = {
    "format": str, "schema_version": int, "name": str, "description": str,
    "dtype": str, "text_encoder": dict, "tokenizer": dict, "stages": list, "source": dict,
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message, flush=True)
    if not ok:
        failures.append(message)
    return ok


def validate_manifest(bundle):
    """Checks the manifest; returns it in the schema 2 shape (manifest.load)."""
    m = bm.load(bundle)
    version = m["_read_schema_version"]
    check(m["format"] == "anagram-bundle" and version in (1, 2), f"format, schema {version}")
    for key, kind in REQUIRED.items():
        check(isinstance(m.get(key), kind), f"manifest.{key} is a {kind.__name__}")
    check(m["dtype"] in DTYPES, f"dtype {m['dtype']}")
    check(m["text_encoder"]["hidden_size"] == m["text_encoder"]["config"]["d_model"],
          "text_encoder.hidden_size is d_model")
    numbers = [s.get("stage") for s in m["stages"]]
    check(numbers in ([1], [1, 2]), f"stages {numbers} (stage 1, optionally stage 2)")
    s1, s2 = bm.stage(m, 1), bm.stage(m, 2)
    att = s1["unet"]["attention"]
    check(att["num_layers"] == len(att["layers"]) > 0, f"{att['num_layers']} attention layers")
    check(att["text_tokens"] == m["tokenizer"]["max_length"] == 77, "77 text tokens")
    check(s1["image"] == {"size": s1["unet"]["config"]["sample_size"], "channels": 3},
          f"stage 1 image {s1['image']}")
    check((s1["unet"]["in_channels"], s1["unet"]["out_channels"]) == (3, 6),
          "stage 1 unet 3 -> 6 channels")
    stages = [("stage 1", s1)] + ([("stage 2", s2)] if s2 else [])
    for what, st in stages:
        for key in ("in_channels", "out_channels", "cross_attention_dim"):
            check(st["unet"][key] == st["unet"]["config"][key], f"{what} unet.{key} matches its config")
        schedulers = ["scheduler"] + (["noising_scheduler"] if st is s2 else [])
        for sched in schedulers:
            missing = [k for k in bm.SCHEDULER_KEYS if k not in st.get(sched, {})]
            check(not missing, f"{what} {sched} has the {len(bm.SCHEDULER_KEYS)} keys"
                  + (f" (missing {missing})" if missing else ""))
    if s2:
        cfg = s2["unet"]["config"]
        check((s2["unet"]["in_channels"], s2["unet"]["out_channels"]) == (6, 6),
              "stage 2 unet 6 -> 6 channels")
        check(s2["unet"].get("class_labels") == "noise_level" and
              cfg.get("class_embed_type") == "timestep", "stage 2 takes the noise level as class labels")
        check("attention" not in s2["unet"], "stage 2 has no attention entry")
        check(s2["image"] == {"size": cfg["sample_size"], "channels": 3}, f"stage 2 image {s2['image']}")
        width = cfg.get("encoder_hid_dim") or cfg["cross_attention_dim"]
        check(width == m["text_encoder"]["hidden_size"], f"stage 2 takes {width}-d text states")
        level = s2.get("default_noise_level")
        check(isinstance(level, int) and 0 <= level < s2["noising_scheduler"]["num_train_timesteps"],
              f"stage 2 default_noise_level {level}")
        check(s2["scheduler"]["sample_max_value"] == 1.0, "stage 2 scheduler sample_max_value 1.0")
    for name in bm.named_files(m):
        path = os.path.join(bundle, name)
        check(os.path.isfile(path), f"{name} exists"
              + (f" ({os.path.getsize(path)} bytes)" if os.path.isfile(path) else ""))
    if version >= 2:
        problems = bm.check_files(bundle, m)
        check(not problems and set(m["files"]) == set(bm.named_files(m)),
              f"files: sha256 and size of {len(m.get('files', {}))} files match"
              + (f" ({'; '.join(problems)})" if problems else ""))
    return m


def inputs(m, batch, seed, timestep, device, dtype, stage=1):
    g = torch.Generator().manual_seed(seed)
    st = bm.stage(m, stage)
    s, c = st["image"]["size"], st["unet"]["in_channels"]
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
    s1 = bm.stage(m, 1)
    unet = torch.jit.load(os.path.join(bundle, s1["unet"]["file"]), map_location=device).eval()
    te = torch.jit.load(os.path.join(bundle, m["text_encoder"]["file"]), map_location=device).eval()
    att = s1["unet"]["attention"]
    q = att["query_resolution"] ** 2
    out = {}
    for batch, t in [(1, 999), (2, 500), (4, 0)]:
        x, ts, text = inputs(m, batch, batch, t, device, dtype)
        with torch.no_grad():
            y = unet(x, ts, text)
            y2, maps = unet.forward_with_attention(x, ts, text)
        s = s1["image"]["size"]
        check(tuple(y.shape) == (batch, s1["unet"]["out_channels"], s, s) and y.dtype == dtype
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
    unet2 = None
    s2 = bm.stage(m, 2)
    if s2:
        unet2 = torch.jit.load(os.path.join(bundle, s2["unet"]["file"]), map_location=device).eval()
        size = s2["image"]["size"]
        for batch, t in [(1, 999), (2, 500), (4, 0)]:
            x, ts, text = inputs(m, batch, 40 + batch, t, device, dtype, stage=2)
            labels = torch.full((batch,), s2["default_noise_level"], dtype=torch.int64, device=device)
            with torch.no_grad():
                y = unet2(x, ts, text, labels)
            check(tuple(y.shape) == (batch, s2["unet"]["out_channels"], size, size) and
                  y.dtype == dtype and y.device.type == device.type and bool(torch.isfinite(y).all()),
                  f"stage 2 forward batch {batch}: {tuple(y.shape)} {y.dtype} on {y.device}")
            out[f"s2_y{batch}"] = y.cpu()
        with torch.no_grad():
            y_other = unet2(x, ts, text, torch.full_like(labels, 999 - s2["default_noise_level"]))
        check((y_other - y).abs().max() > 0, "stage 2 output depends on the noise level")
    return unet, te, unet2, out


def compare_reference(out, ref_path, dtype):
    ref = torch.load(ref_path)
    tol = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 1e-2}[dtype]
    for key, expected in ref.items():
        d = (out[key].float() - expected.float()).abs().max().item()
        scale = max(1.0, expected.float().abs().max().item())
        check(d <= tol * scale, f"{key} matches the reference: max |diff| {d:.2e}")


def eager_checks(bundle, m, unet_traced, te_traced, unet2_traced, device):
    """Traced files against eager models rebuilt from the manifest (needs diffusers).

    Tolerances: anagram_py.tolerance for a restated computation (the eager side is rebuilt
    here, with this machine's diffusers/transformers and diffusers' own attention processor)."""
    from anagram_py.export.if_verify import verify_maps_explicitly
    from anagram_py.golden import eager

    dtype = DTYPES[m["dtype"]]
    unet, te, tokenizer, _ = eager.load_bundle(bundle, check_dtype=False)
    unet, te = unet.to(device, dtype), te.to(device, dtype)

    def compare(pairs, what):
        """pairs: (traced output, eager output); one check line for all of them."""
        worst, ok = 0.0, True
        for got, expected in pairs:
            d = max_difference(got, expected)
            ok = ok and d <= allowed_difference(device, dtype, max_magnitude(expected),
                                                same_computation=False)
            worst = max(worst, d)
        check(ok, f"{what}: max |diff| {worst:.2e}")

    pairs = []
    for batch, t in [(1, 999), (2, 500), (4, 0)]:
        x, ts, text = inputs(m, batch, 20 + batch, t, device, dtype)
        with torch.no_grad():
            pairs.append((unet_traced(x, ts, text), unet(x, ts, encoder_hidden_states=text).sample))
    compare(pairs, "traced UNet vs eager diffusers, batches 1/2/4")
    layers = bm.stage(m, 1)["unet"]["attention"]["layers"]
    try:
        d = verify_maps_explicitly(unet_traced, unet, layers, m["text_encoder"]["hidden_size"])
        check(True, f"maps of {layers[0]} equal softmax(QK^T*scale) recomputed: max |diff| {d:.2e}")
    except ToleranceError as e:
        check(False, str(e))
    pairs = []
    for texts in (["a photo of a dog"], ["dog", "an oil painting of a cat " * 10]):
        enc = tokenizer(texts, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt")
        ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
        with torch.no_grad():
            pairs.append((te_traced(ids, mask), te(ids, attention_mask=mask)[0]))
    compare(pairs, "traced text encoder vs eager transformers")
    if unet2_traced is not None:
        unet2 = eager.load_stage2(bundle, check_dtype=False)[0].to(device, dtype)
        level = bm.stage(m, 2)["default_noise_level"]
        pairs = []
        for batch, t in [(1, 999), (2, 500), (4, 0)]:
            x, ts, text = inputs(m, batch, 50 + batch, t, device, dtype, stage=2)
            labels = torch.tensor([level, 0, 250, 999][:batch], dtype=torch.int64, device=device)
            with torch.no_grad():
                pairs.append((unet2_traced(x, ts, text, labels),
                              unet2(x, ts, encoder_hidden_states=text, class_labels=labels).sample))
        compare(pairs, "traced stage 2 UNet vs eager diffusers, batches 1/2/4")


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
    scheduler = DDPMScheduler(**bm.stage(m, 1)["scheduler"])
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


class _TracedStage2:
    """The traced unet_stage2.pt behind the eager call signature the golden loops use."""

    class _Out:
        def __init__(self, sample):
            self.sample = sample

    def __init__(self, traced, config):
        self.traced, self.config = traced, config

    def __call__(self, sample, timestep, encoder_hidden_states, class_labels):
        return self._Out(self.traced(sample, timestep, encoder_hidden_states, class_labels))


class _TracedStage1(_TracedStage2):
    def __call__(self, sample, timestep, encoder_hidden_states):
        return self._Out(self.traced(sample, timestep, encoder_hidden_states))


def golden_replay_stage2(bundle, m, unet_traced, te_traced, unet2_traced, golden_path):
    """The stage II golden run's loops with the traced UNets and text encoder (CPU, float32)."""
    from types import SimpleNamespace

    from diffusers import DDPMScheduler

    from anagram_py.golden import eager, sampling_loops

    g = {k: v for k, v in torch.jit.load(golden_path).named_buffers()}
    s1, s2 = bm.stage(m, 1), bm.stage(m, 2)
    views = bytes(g["views_utf8"].tolist()).decode().split("\n")
    n = len(views)
    with torch.no_grad():
        pos = te_traced(g["prompt_ids"], g["prompt_mask"])
        neg = te_traced(g["negative_ids"], g["negative_mask"])
        check((pos - g["prompt_embeds"]).abs().max() < 1e-5 and
              (neg - g["negative_embeds"]).abs().max() < 1e-5,
              "stage 2 golden text states reproduced by text_encoder.pt")
        text = torch.cat([neg.expand(n, -1, -1), pos])
        (clip_img, _), _, _ = eager.load_clip(bundle)
        gen = torch.Generator("cpu").manual_seed(int(g["seed"]))
        unet1 = _TracedStage1(unet_traced, SimpleNamespace(sample_size=s1["image"]["size"]))
        x1, rec1 = sampling_loops.stage1_baseline(unet1, DDPMScheduler(**s1["scheduler"]), text,
                                                  gen, views, int(g["stage1_num_steps"]))
        d1 = (x1 - g["stage1_result"]).abs().max().item()
        check(d1 < 1e-4, f"stage 2 golden: stage I result replayed with unet.pt: max |diff| {d1:.2e}")
        # Continue from the golden stage I picture so that stage II is checked on its own.
        unet2 = _TracedStage2(unet2_traced, SimpleNamespace(sample_size=s2["image"]["size"]))
        models = (unet2, DDPMScheduler(**s2["scheduler"]), DDPMScheduler(**s2["noising_scheduler"]),
                  clip_img, g["clip_text_emb"])
        _, rec2 = sampling_loops.stage2_method(models, g["stage1_result"], text, gen, views,
                                               int(g["stage2_num_steps"]), int(g["noise_level"]))
    rows = int(g["crop_rows"])
    dx = (rec2["x_steps"][..., :rows, :] - g["x_steps"]).abs().max().item()
    dr = (rec2["result"] - g["result"]).abs().max().item()
    dw = (rec2["weights"] - g["weights"]).abs().max().item()
    check(torch.equal(rec2["stage2_timesteps"], g["stage2_timesteps"]), "stage 2 golden timesteps")
    check(dw < 1e-4 and dx < 1e-4 and dr < 1e-4,
          f"stage 2 golden replayed with unet_stage2.pt: max |diff| weights {dw:.2e}, "
          f"x per step {dx:.2e}, result {dr:.2e}")


def run_checks(args, device):
    """Every check the options ask for; failures are collected in `failures`."""
    print(f"checking {args.bundle} on {device} with torch {torch.__version__}")
    m = validate_manifest(args.bundle)
    unet, te, unet2, out = run_traced(args.bundle, m, device)
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
            eager_checks(args.bundle, m, unet, te, unet2, device)
            if args.golden:
                golden_replay(args.bundle, m, unet.cpu() if device.type != "cpu" else unet,
                              te.cpu() if device.type != "cpu" else te, args.golden)
            if args.golden_stage2:
                if unet2 is None:
                    check(False, "--golden-stage2 given but the bundle has no stage 2")
                else:
                    golden_replay_stage2(args.bundle, m, unet.cpu(), te.cpu(), unet2.cpu(),
                                         args.golden_stage2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", nargs="?", default="models/tiny-if")
    p.add_argument("--device", default="cpu")
    p.add_argument("--golden", default=None)
    p.add_argument("--golden-stage2", default=None)
    p.add_argument("--save-reference", default=None)
    p.add_argument("--reference", default=None)
    p.add_argument("--no-eager", action="store_true", help="skip the checks that need diffusers")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    with tf32_disabled():  # full float32 on CUDA, for the comparisons
        run_checks(args, device)
    print(f"{'FAILED: ' + str(len(failures)) + ' check(s)' if failures else 'all checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

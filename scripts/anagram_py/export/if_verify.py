"""Phase 5 of the IF export: the traces against eager diffusers / transformers, and the saved
files against the traces.

How close is close enough is ..tolerance's policy: exact where the same computation runs on the
CPU in float32, relative to the output's scale elsewhere (CUDA, half precision) and where one
side is restated (our attention processor against diffusers' own, an explicit softmax(QK^T),
the JIT's backward). Run these with TF32 off on CUDA (tolerance.tf32_disabled). A failed check
raises tolerance.ToleranceError or SystemExit.
"""
import os

import torch

from ..tolerance import check_close, max_difference
from .if_attention import install_capture
from .if_common import STAGE2_FILE, TEXT_TOKENS, example_inputs, log, stage2_inputs
from .if_trace import UNetBundleModule, device_constants, tokenize

UNET_CASES = [(1, 999, 1), (2, 500, 2), (4, 0, 3), (4, 250, 4), (1, 17, 5)]  # (batch, t, seed)
STAGE2_CASES = [  # (batch, timestep, noise levels, seed)
    (1, 999, [50], 21), (2, 500, [0, 250], 22), (4, 0, [50, 50, 50, 50], 23),
    (4, 250, [999, 1, 50, 300], 24), (1, 17, [1], 25), (2, 666, [50, 50], 26)]


def verify_unet(traced, unet, layers, text_dim):
    """Traced vs eager (diffusers' own AttnAddedKVProcessor) for several batches/timesteps;
    forward_with_attention vs forward; the maps' shape."""
    from diffusers.models.attention_processor import AttnAddedKVProcessor

    device, dtype = unet.device, unet.dtype
    capturing = unet.attn_processors
    unet.set_attn_processor(AttnAddedKVProcessor())
    worst = 0.0
    try:
        for batch, timestep, seed in UNET_CASES:
            x, t, s = example_inputs(unet, text_dim, batch, dtype, device, seed, timestep)
            with torch.no_grad():
                expected = unet(x, t, encoder_hidden_states=s).sample
                got = traced(x, t, s)
                got_att, maps = traced.forward_with_attention(x, t, s)
            what = f"traced UNet and eager diffusers (batch {batch}, t={timestep})"
            d = check_close(got, expected, device, dtype, what, same_computation=False)
            d_att = check_close(got_att, got, device, dtype,
                                f"forward_with_attention and forward (batch {batch})")
            worst = max(worst, d, d_att)
            log(f"  unet batch {batch} t={timestep}: |traced-eager| {d:.2e}, "
                f"|forward_with_attention-forward| {d_att:.2e}, maps {tuple(maps.shape)}")
            q = maps.shape[2]
            if tuple(maps.shape) != (len(layers), batch, q, TEXT_TOKENS) or \
                    not torch.isfinite(maps).all():
                raise SystemExit(f"error: attention maps have shape {tuple(maps.shape)}")
    finally:
        unet.set_attn_processor(capturing)
    return worst


def verify_maps_explicitly(traced, unet, layers, text_dim):
    """Recompute one layer's probabilities as softmax(Q K^T * scale) from its weights
    (in float32); returns max |captured - recomputed|."""
    from diffusers.models.attention_processor import AttnAddedKVProcessor

    capturing = unet.attn_processors
    target = layers[0]
    inputs = {}

    class Record(AttnAddedKVProcessor):
        def __call__(self, attn, hidden_states, encoder_hidden_states=None, **kw):
            inputs["hidden"], inputs["text"] = hidden_states, encoder_hidden_states
            return super().__call__(attn, hidden_states, encoder_hidden_states, **kw)

    procs = {k: (Record() if k == target + ".processor" else AttnAddedKVProcessor())
             for k in capturing}
    unet.set_attn_processor(procs)
    try:
        x, t, s = example_inputs(unet, text_dim, 2, unet.dtype, unet.device, seed=7, timestep=321)
        with torch.no_grad():
            unet(x, t, encoder_hidden_states=s)
            _, maps = traced.forward_with_attention(x, t, s)
            attn = unet.get_submodule(target)
            b, c = inputs["hidden"].shape[:2]
            h = _group_norm(attn.group_norm, inputs["hidden"].reshape(b, c, -1)).transpose(1, 2)
            text = _group_norm(attn.norm_cross, inputs["text"].transpose(1, 2)).transpose(1, 2)
            heads = attn.heads

            def split(v):  # (B, N, heads*d) -> (B, heads, N, d)
                return v.reshape(v.shape[0], v.shape[1], heads, -1).permute(0, 2, 1, 3)

            q = split(_linear(attn.to_q, h))
            k_text, k_self = split(_linear(attn.add_k_proj, text)), split(_linear(attn.to_k, h))
            k = torch.cat([k_text, k_self], dim=2)
            probs = torch.softmax(q @ k.transpose(-1, -2) * attn.scale, dim=-1)
            expected = probs[..., :TEXT_TOKENS].sum(1)
    finally:
        unet.set_attn_processor(capturing)
    d = check_close(maps[0], expected, unet.device, unet.dtype,
                    f"captured maps of {target} and softmax(QK^T*scale) recomputed",
                    same_computation=False)
    log(f"  explicit softmax(QK^T*scale) for {target}: max diff {d:.2e}")
    return d


def _group_norm(norm, x):
    """nn.GroupNorm evaluated in float32."""
    return torch.nn.functional.group_norm(x.float(), norm.num_groups, norm.weight.float(),
                                          norm.bias.float(), norm.eps)


def _linear(linear, x):
    """nn.Linear evaluated in float32."""
    bias = None if linear.bias is None else linear.bias.float()
    return torch.nn.functional.linear(x, linear.weight.float(), bias)


def verify_gradients(traced, unet, layers, text_dim):
    """The maps must be differentiable w.r.t. the sample, with eager's gradient (the trace's
    backward is the JIT's, hence not the same computation)."""
    module = UNetBundleModule(unet, install_capture(unet, layers))
    x, t, s = example_inputs(unet, text_dim, 2, unet.dtype, unet.device, seed=9, timestep=600)
    g = torch.Generator().manual_seed(10)
    weights = None
    grads = []
    for fn in (traced.forward_with_attention, module.forward_with_attention):
        xs = x.clone().requires_grad_(True)
        _, maps = fn(xs, t, s)
        if weights is None:
            weights = torch.randn(maps.shape, generator=g).to(maps)
        (maps * weights).sum().backward()
        grads.append(xs.grad)
    scale = grads[1].abs().max().item()
    if not scale > 0 or not torch.isfinite(grads[0]).all():
        raise SystemExit("error: attention maps carry no gradient to the sample")
    d = check_close(grads[0], grads[1], unet.device, unet.dtype,
                    "traced and eager map gradients", same_computation=False)
    log(f"  d(maps)/d(sample): max |grad| {scale:.2e}, |traced-eager| {d:.2e}")


def verify_text_encoder(traced, text_encoder, spiece_path):
    device, dtype = text_encoder.device, text_encoder.dtype
    cases = [["a photo of a dog"], ["", "a very long prompt " * 30],
             ["dog", "cat", "a painting of a snowy mountain village", "x"]]
    worst = 0.0
    for texts in cases:
        ids, mask = tokenize(spiece_path, texts)
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            expected = text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            got = traced(ids, mask)
        d = check_close(got, expected, device, dtype,
                        f"traced and eager text encoder (batch {len(texts)})")
        worst = max(worst, d)
        log(f"  text encoder batch {len(texts)}: |traced-eager| {d:.2e}")
    return worst


def verify_unet_stage2(traced, unet, text_dim):
    """Traced vs eager diffusers (its own AttnAddedKVProcessor): batches, timesteps, levels."""
    from diffusers.models.attention_processor import AttnAddedKVProcessor

    device, dtype = unet.device, unet.dtype
    ours = unet.attn_processors
    unet.set_attn_processor(AttnAddedKVProcessor())
    worst = 0.0
    try:
        for batch, timestep, levels, seed in STAGE2_CASES:
            x, t, s, c = stage2_inputs(unet, text_dim, batch, dtype, device, seed, timestep, levels)
            with torch.no_grad():
                expected = unet(x, t, encoder_hidden_states=s, class_labels=c).sample
                got = traced(x, t, s, c)
            what = f"traced stage II UNet and eager diffusers (batch {batch}, t={timestep})"
            d = check_close(got, expected, device, dtype, what, same_computation=False)
            worst = max(worst, d)
            log(f"  stage II unet batch {batch} t={timestep} noise levels {levels}: "
                f"|traced-eager| {d:.2e}")
        # The noise level must matter (class_labels reach the network).
        x, t, s, c = stage2_inputs(unet, text_dim, 2, dtype, device, 27, 400, [0, 999])
        with torch.no_grad():
            a = traced(x, t, s, c)
            b = traced(x, t, s, torch.tensor([999, 0], device=c.device))
        if not max_difference(a, b) > 0:
            raise SystemExit("error: the stage II UNet ignores its class labels (noise level)")
    finally:
        unet.set_attn_processor(ours)
    return worst


def verify_reloaded(bundle_dir, traced_unet, traced_te, unet, text_dim, spiece_path):
    """The saved unet.pt and text_encoder.pt give the in-memory traces' results."""
    device, dtype = unet.device, unet.dtype
    unet_file = torch.jit.load(os.path.join(bundle_dir, "unet.pt"), map_location=device)
    te_file = torch.jit.load(os.path.join(bundle_dir, "text_encoder.pt"), map_location=device)
    x, t, s = example_inputs(unet, text_dim, 2, dtype, device, seed=11, timestep=100)
    ids, mask = tokenize(spiece_path, ["dog", "cat"])
    with torch.no_grad():
        a = unet_file.forward_with_attention(x, t, s)
        b = traced_unet.forward_with_attention(x, t, s)
        c = te_file(ids.to(device), mask.to(device))
        d = traced_te(ids.to(device), mask.to(device))
    diffs = [check_close(a[0], b[0], device, dtype, "saved unet.pt and the trace (output)"),
             check_close(a[1], b[1], device, dtype, "saved unet.pt and the trace (maps)"),
             check_close(c, d, device, dtype, "saved text_encoder.pt and the trace")]
    params = dict(unet_file.named_parameters())
    log(f"  reloaded files reproduce the traces (max |diff| {max(diffs):.2e}); unet.pt holds "
        f"{len(params)} parameter tensors ({sum(p.numel() for p in params.values())} values)")


def verify_reloaded_stage2(bundle_dir, traced, unet, text_dim):
    """The saved unet_stage2.pt gives the trace's results and names no device."""
    device, dtype = unet.device, unet.dtype
    loaded = torch.jit.load(os.path.join(bundle_dir, STAGE2_FILE), map_location=device)
    x, t, s, c = stage2_inputs(unet, text_dim, 2, dtype, device, 31, 100, [50, 123])
    with torch.no_grad():
        a, b = loaded(x, t, s, c), traced(x, t, s, c)
    d = check_close(a, b, device, dtype, f"saved {STAGE2_FILE} and the trace")
    left = device_constants(loaded)
    if left:
        raise SystemExit(f"error: {STAGE2_FILE} still holds {left} device constants")
    log(f"  reloaded {STAGE2_FILE} reproduces the trace (max |diff| {d:.2e}); "
        f"{sum(p.numel() for p in loaded.parameters())} values")

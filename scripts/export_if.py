#!/usr/bin/env python3
"""Export a DeepFloyd IF stage I pipeline to an `anagram` model bundle (docs/bundle.md).

Usage:
    .venv/bin/python scripts/export_if.py SOURCE OUTDIR [--name NAME]
        [--dtype float32|float16|bfloat16] [--device cpu|cuda] [--attention-resolution 32]

SOURCE is a local diffusers IF pipeline folder (the layout `save_pretrained` writes:
unet/, text_encoder/, tokenizer/, scheduler/) or a Hugging Face hub id such as
DeepFloyd/IF-I-XL-v1.0 (needs network access and an accepted licence; use --variant fp16
to fetch the half-precision weights).

OUTDIR receives:
    unet.pt           TorchScript UNet with `forward` and `forward_with_attention`
    text_encoder.pt   TorchScript T5 encoder: (input_ids, attention_mask) -> last hidden state
    spiece.model      the SentencePiece model, copied from the tokenizer
    manifest.json     everything the C++ program needs to know (docs/bundle.md)
If OUTDIR already is a bundle, the parts other tools added to it (files, and manifest
entries such as the optional "clip" object) are kept.

Phases: load the source, install a capturing attention processor, trace the UNet (batch 2)
and the text encoder, verify the traces against eager diffusers/transformers (batches 1, 2
and 4, several timesteps, attention maps against an explicit recomputation, gradients of
the maps), make the traced graphs device-independent, write everything into a temporary
folder next to OUTDIR and rename it into place.

Notes:
  * The traces are made in --dtype on --device and stay in that dtype: the graphs contain
    dtype-dependent constants and branches (T5 layer norm casts, finfo(dtype).min masks),
    so run a bundle in the dtype it was exported in. The device, however, is not baked in:
    every device constant is replaced by the device of the graph's first tensor input, so
    a bundle traced on the CPU should run on CUDA after torch::jit::load(path, device)
    (no device constant is left in the saved code; not yet run on a GPU).
  * float16 needs --device cuda: torch 1.13 has no float16 kernels for most CPU ops.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import torch

FORMAT = "anagram-bundle"
SCHEMA_VERSION = 1
TEXT_TOKENS = 77
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Largest acceptable |traced - eager| per dtype. Traced and eager code run the same kernels
# on the same shapes, so float32 agrees to rounding noise.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 1e-1}
SCHEDULER_KEYS = ["num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                  "variance_type", "prediction_type", "clip_sample", "clip_sample_range",
                  "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
                  "timestep_spacing", "steps_offset"]


def log(message):
    print(f"[export_if] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# Phase 1: load the source pipeline parts.

def load_source(source, dtype, device, variant=None):
    """Load UNet, T5 encoder, tokenizer file and scheduler config from SOURCE."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import T5EncoderModel

    kwargs = {"variant": variant} if variant else {}
    log(f"loading {source}")
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **kwargs)
    text_encoder = T5EncoderModel.from_pretrained(source, subfolder="text_encoder", **kwargs)
    scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler")
    if os.path.isdir(source):
        spiece = os.path.join(source, "tokenizer", "spiece.model")
    else:
        from huggingface_hub import hf_hub_download
        spiece = hf_hub_download(source, "spiece.model", subfolder="tokenizer")
    if not os.path.isfile(spiece):
        raise SystemExit(f"error: {spiece} not found (SOURCE must have tokenizer/spiece.model)")

    cfg = unet.config
    if cfg.in_channels != 3 or cfg.out_channels != 6:
        raise SystemExit("error: only IF stage I UNets (3 input, 6 output channels) can be "
                         f"exported; this one has {cfg.in_channels} -> {cfg.out_channels}")
    if cfg.encoder_hid_dim is not None and cfg.encoder_hid_dim != text_encoder.config.d_model:
        raise SystemExit(f"error: UNet expects {cfg.encoder_hid_dim}-d text states, "
                         f"the text encoder gives {text_encoder.config.d_model}")

    unet = unet.to(device=device, dtype=dtype).eval().requires_grad_(False)
    text_encoder = text_encoder.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return unet, text_encoder, spiece, scheduler.config


def check_dtype_supported(dtype, device):
    """Fail early with a clear message where torch cannot run the dtype on the device."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda requested but torch.cuda.is_available() is False")
    if dtype == torch.float16 and device.type == "cpu":
        try:
            conv = torch.nn.Conv2d(3, 3, 3).half()
            conv(torch.zeros(1, 3, 8, 8, dtype=torch.float16))
            torch.nn.functional.group_norm(torch.zeros(1, 4, 2, 2, dtype=torch.float16), 2)
        except RuntimeError as e:
            raise SystemExit(f"error: this torch ({torch.__version__}) cannot run float16 on the "
                             f"CPU ({str(e).splitlines()[0]}); export float16 bundles with "
                             "--device cuda, or use --dtype float32/bfloat16 on the CPU")


# ---------------------------------------------------------------------------------------
# Phase 2: attention processor that can record cross-attention probabilities.

class CaptureState:
    """Shared by all processors of one UNet: the capture switch and the recorded maps."""

    def __init__(self):
        self.active = False
        self.maps = []

    def start(self):
        self.active = True
        self.maps = []

    def stop(self):
        maps, self.maps, self.active = self.maps, [], False
        return maps


class CapturingAddedKVProcessor:
    """diffusers' AttnAddedKVProcessor math, plus optional capture of attention probabilities.

    IF's attention layers attend from the image positions to [projected text tokens, then
    the image positions themselves]. When `capture` is set for this layer and the shared
    state is active, the probabilities of the text-key columns, summed over heads, are
    appended to the state as (B, Q, T). Nothing is detached: the maps carry gradients.
    Casts use type_as so that no dtype other than float32 (the softmax upcast) is named.
    """

    def __init__(self, name, state, capture):
        self.name = name
        self.state = state
        self.capture = capture

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 scale=1.0):
        from diffusers.utils import USE_PEFT_BACKEND

        args = () if USE_PEFT_BACKEND else (scale,)
        residual = hidden_states
        hidden_states = hidden_states.view(hidden_states.shape[0], hidden_states.shape[1], -1)
        hidden_states = hidden_states.transpose(1, 2)
        batch_size, sequence_length, _ = hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)

        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        text_tokens = encoder_hidden_states.shape[1]

        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states, *args))
        text_key = attn.head_to_batch_dim(attn.add_k_proj(encoder_hidden_states, *args))
        text_value = attn.head_to_batch_dim(attn.add_v_proj(encoder_hidden_states, *args))
        if attn.only_cross_attention:
            key, value = text_key, text_value
        else:
            key = torch.cat([text_key, attn.head_to_batch_dim(attn.to_k(hidden_states, *args))], 1)
            value = torch.cat([text_value, attn.head_to_batch_dim(attn.to_v(hidden_states, *args))], 1)

        probs = self._attention_probs(attn, query, key, attention_mask)
        if self.capture and self.state.active:
            text_probs = probs[:, :, :text_tokens]
            text_probs = text_probs.reshape(-1, attn.heads, text_probs.shape[1], text_probs.shape[2])
            self.state.maps.append(text_probs.sum(1))

        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[0](hidden_states, *args)
        hidden_states = attn.to_out[1](hidden_states)
        hidden_states = hidden_states.transpose(-1, -2).reshape(residual.shape)
        return hidden_states + residual

    @staticmethod
    def _attention_probs(attn, query, key, attention_mask):
        """Attention.get_attention_scores without device/dtype constants in the trace."""
        q, k = query, key
        if attn.upcast_attention:
            q, k = q.float(), k.float()
        if attention_mask is None:
            # beta=0: the input's values are ignored; zeros of a broadcastable shape are
            # made from q so that the trace names no device.
            base = torch.zeros_like(q[:, :, :1])
            beta = 0
        else:
            base = attention_mask
            beta = 1
        scores = torch.baddbmm(base, q, k.transpose(-1, -2), beta=beta, alpha=attn.scale)
        if attn.upcast_softmax:
            scores = scores.float()
        return scores.softmax(dim=-1).type_as(query)


class ProbeProcessor:
    """Records (layer name, query count) in call order, then runs diffusers' processor."""

    def __init__(self, name, inner, calls):
        self.name, self.inner, self.calls = name, inner, calls

    def __call__(self, attn, hidden_states, *args, **kwargs):
        queries = hidden_states.shape[2] * hidden_states.shape[3] if hidden_states.ndim == 4 \
            else hidden_states.shape[1]
        self.calls.append((self.name, int(queries)))
        return self.inner(attn, hidden_states, *args, **kwargs)


def example_inputs(unet, text_dim, batch, dtype, device, seed=0, timestep=500):
    g = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    sample = torch.randn(batch, unet.config.in_channels, size, size, generator=g)
    states = torch.randn(batch, TEXT_TOKENS, text_dim, generator=g)
    return (sample.to(device=device, dtype=dtype),
            torch.tensor(timestep, dtype=torch.int64, device=device),
            states.to(device=device, dtype=dtype))


def find_attention_layers(unet, resolution, text_dim):
    """Names of attention layers whose query grid is resolution x resolution, in call order."""
    from diffusers.models.attention_processor import (AttnAddedKVProcessor,
                                                      AttnAddedKVProcessor2_0)
    originals = unet.attn_processors
    for name, proc in originals.items():
        if not isinstance(proc, (AttnAddedKVProcessor, AttnAddedKVProcessor2_0)):
            raise SystemExit(f"error: {name} uses {type(proc).__name__}; an IF UNet uses "
                             "added-KV attention (AttnAddedKVProcessor) everywhere")
    calls = []
    unet.set_attn_processor({k: ProbeProcessor(k[:-len(".processor")], AttnAddedKVProcessor(), calls)
                             for k in originals})
    sample, t, states = example_inputs(unet, text_dim, 1, unet.dtype, unet.device)
    with torch.no_grad():
        unet(sample, t, encoder_hidden_states=states)
    unet.set_attn_processor(originals)
    layers = [name for name, queries in calls if queries == resolution * resolution]
    if not layers:
        found = sorted({q for _, q in calls})
        raise SystemExit(f"error: no attention layer has a {resolution}x{resolution} query grid "
                         f"(query counts: {found})")
    if len(set(layers)) != len(layers):
        raise SystemExit("error: an attention layer ran twice in one forward pass")
    return layers, calls


def install_capture(unet, layers):
    state = CaptureState()
    procs = {}
    for key in unet.attn_processors:
        name = key[:-len(".processor")]
        procs[key] = CapturingAddedKVProcessor(name, state, name in layers)
    unet.set_attn_processor(procs)
    return state


# ---------------------------------------------------------------------------------------
# Phase 3: the modules that get traced.

class UNetBundleModule(torch.nn.Module):
    """The UNet as the bundle sees it: two methods, one set of weights."""

    def __init__(self, unet, state):
        super().__init__()
        self.unet = unet
        self._capture = state  # plain Python object: not a parameter, not traced

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         return_dict=False)[0]

    def forward_with_attention(self, sample, timestep, encoder_hidden_states):
        self._capture.start()
        try:
            out = self.forward(sample, timestep, encoder_hidden_states)
        finally:
            maps = self._capture.stop()
        return out, torch.stack(maps)


class TextEncoderBundleModule(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                            return_dict=False)[0]


def trace_quietly(fn):
    """Run a tracing function, collect its warnings and print each distinct one once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    seen = {}
    for w in caught:
        key = (w.category.__name__, str(w.message).splitlines()[0])
        seen.setdefault(key, f"{os.path.basename(w.filename)}:{w.lineno}")
    for (category, message), where in seen.items():
        log(f"  trace warning ({category}, {where}): {message[:160]}")
    return result


def trace_unet(unet, state, text_dim):
    module = UNetBundleModule(unet, state).eval()
    inputs = example_inputs(unet, text_dim, 2, unet.dtype, unet.device)
    log("tracing the UNet (batch 2): forward, forward_with_attention")
    traced = trace_quietly(lambda: torch.jit.trace_module(
        module, {"forward": inputs, "forward_with_attention": inputs}, check_trace=False))
    return traced


def tokenize(spiece_path, texts):
    """T5 tokenisation as IF's pipeline does it (padding to 77, truncation, eos)."""
    from transformers import T5Tokenizer
    tok = T5Tokenizer(vocab_file=spiece_path, extra_ids=100, model_max_length=TEXT_TOKENS,
                      legacy=True)
    enc = tok(texts, padding="max_length", max_length=TEXT_TOKENS, truncation=True,
              add_special_tokens=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def trace_text_encoder(text_encoder, spiece_path):
    module = TextEncoderBundleModule(text_encoder).eval()
    ids, mask = tokenize(spiece_path, ["a photo of a dog", "an oil painting of a cat"])
    device = text_encoder.device
    log("tracing the text encoder (batch 2)")
    return trace_quietly(lambda: torch.jit.trace(module, (ids.to(device), mask.to(device)),
                                                 check_trace=False))


# ---------------------------------------------------------------------------------------
# Phase 4: make the graphs device-independent.

def _script_methods(module):
    """(qualified name, graph) of every method of a ScriptModule and its submodules."""
    for prefix, sub in module.named_modules():
        for method in sub._c._method_names():
            yield f"{prefix or '<top>'}.{method}", sub._c._get_method(method).graph


def remove_device_constants(module):
    """Replace every Device constant by prim::device(first tensor input of that graph).

    torch.jit.trace records `device=x.device` arguments (torch.arange, .to(device), ...) as
    constants, which would pin the bundle to the tracing device. All tensors of one call
    live on one device, so the device of any tensor input is the right one.
    Returns the number of constants replaced.
    """
    device_type = torch._C.DeviceObjType.get()
    replaced = 0
    for where, graph in _script_methods(module):
        constants = [n for n in graph.findAllNodes("prim::Constant")
                     if n.output().type() == device_type]
        if not constants:
            continue
        anchor = next((v for v in graph.inputs() if v.type().kind() == "TensorType"), None)
        if anchor is None:
            raise RuntimeError(f"{where}: device constant but no tensor input to take it from")
        node = graph.create("prim::device", [anchor])
        node.output().setType(device_type)
        node.insertBefore(next(iter(graph.nodes())))
        for c in constants:
            c.output().replaceAllUsesWith(node.output())
            c.destroy()
        replaced += len(constants)
        graph.lint()
    return replaced


# ---------------------------------------------------------------------------------------
# Phase 5: verification against eager diffusers / transformers.

def _max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def verify_unet(traced, unet, state, layers, text_dim, tol):
    """Traced vs eager (diffusers' own AttnAddedKVProcessor) for several batches/timesteps."""
    from diffusers.models.attention_processor import AttnAddedKVProcessor

    capturing = unet.attn_processors
    unet.set_attn_processor(AttnAddedKVProcessor())
    worst = 0.0
    for batch, timestep, seed in [(1, 999, 1), (2, 500, 2), (4, 0, 3), (4, 250, 4), (1, 17, 5)]:
        x, t, s = example_inputs(unet, text_dim, batch, unet.dtype, unet.device, seed, timestep)
        with torch.no_grad():
            expected = unet(x, t, encoder_hidden_states=s).sample
            got = traced(x, t, s)
            got_att, maps = traced.forward_with_attention(x, t, s)
        d, d_att = _max_diff(got, expected), _max_diff(got_att, got)
        worst = max(worst, d, d_att)
        log(f"  unet batch {batch} t={timestep}: |traced-eager| {d:.2e}, "
            f"|forward_with_attention-forward| {d_att:.2e}, maps {tuple(maps.shape)}")
        if d > tol or d_att > tol:
            raise SystemExit(f"error: traced UNet differs from eager diffusers by {max(d, d_att):.3g}")
        q = maps.shape[2]
        if tuple(maps.shape) != (len(layers), batch, q, TEXT_TOKENS) or not torch.isfinite(maps).all():
            raise SystemExit(f"error: attention maps have shape {tuple(maps.shape)}")
    unet.set_attn_processor(capturing)
    return worst


def verify_maps_explicitly(traced, unet, layers, text_dim, tol):
    """Recompute one layer's probabilities as softmax(Q K^T * scale) from its weights."""
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

        q = split(torch.nn.functional.linear(h, attn.to_q.weight.float(), _bias(attn.to_q)))
        k_text = split(torch.nn.functional.linear(text, attn.add_k_proj.weight.float(), _bias(attn.add_k_proj)))
        k_self = split(torch.nn.functional.linear(h, attn.to_k.weight.float(), _bias(attn.to_k)))
        k = torch.cat([k_text, k_self], dim=2)
        probs = torch.softmax(q @ k.transpose(-1, -2) * attn.scale, dim=-1)
        expected = probs[..., :TEXT_TOKENS].sum(1)
    unet.set_attn_processor(capturing)
    d = _max_diff(maps[0], expected)
    log(f"  explicit softmax(QK^T*scale) for {target}: max diff {d:.2e}")
    if d > tol:
        raise SystemExit(f"error: captured maps of {target} differ from recomputation by {d:.3g}")
    return d


def _group_norm(norm, x):
    """nn.GroupNorm evaluated in float32."""
    return torch.nn.functional.group_norm(x.float(), norm.num_groups, norm.weight.float(),
                                          norm.bias.float(), norm.eps)


def _bias(linear):
    return None if linear.bias is None else linear.bias.float()


def verify_gradients(traced, unet, layers, text_dim, tol):
    """The maps must be differentiable w.r.t. the sample, with eager's gradient."""
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
    d = _max_diff(grads[0], grads[1])
    log(f"  d(maps)/d(sample): max |grad| {scale:.2e}, |traced-eager| {d:.2e}")
    if not scale > 0 or not torch.isfinite(grads[0]).all():
        raise SystemExit("error: attention maps carry no gradient to the sample")
    if d > tol * max(1.0, scale):
        raise SystemExit(f"error: traced map gradient differs from eager by {d:.3g}")


def verify_text_encoder(traced, text_encoder, spiece_path, tol):
    device = text_encoder.device
    cases = [["a photo of a dog"], ["", "a very long prompt " * 30],
             ["dog", "cat", "a painting of a snowy mountain village", "x"]]
    worst = 0.0
    for texts in cases:
        ids, mask = tokenize(spiece_path, texts)
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            expected = text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            got = traced(ids, mask)
        d = _max_diff(got, expected)
        worst = max(worst, d)
        log(f"  text encoder batch {len(texts)}: |traced-eager| {d:.2e}")
        if d > tol:
            raise SystemExit(f"error: traced text encoder differs from eager by {d:.3g}")
    return worst


def verify_reloaded(bundle_dir, traced_unet, traced_te, unet, text_dim, spiece_path):
    """The saved files give the same results as the in-memory traces."""
    device = unet.device
    unet_file = torch.jit.load(os.path.join(bundle_dir, "unet.pt"), map_location=device)
    te_file = torch.jit.load(os.path.join(bundle_dir, "text_encoder.pt"), map_location=device)
    x, t, s = example_inputs(unet, text_dim, 2, unet.dtype, device, seed=11, timestep=100)
    ids, mask = tokenize(spiece_path, ["dog", "cat"])
    with torch.no_grad():
        a = unet_file.forward_with_attention(x, t, s)
        b = traced_unet.forward_with_attention(x, t, s)
        c = te_file(ids.to(device), mask.to(device))
        d = traced_te(ids.to(device), mask.to(device))
    if not (torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(c, d)):
        raise SystemExit("error: the saved TorchScript files do not reproduce the traces")
    params = dict(unet_file.named_parameters())
    log(f"  reloaded files reproduce the traces; unet.pt holds {len(params)} parameter tensors "
        f"({sum(p.numel() for p in params.values())} values)")


# ---------------------------------------------------------------------------------------
# Phase 6: manifest and files.

def jsonable(value):
    """Config values as plain JSON types (tuples -> lists, paths -> str)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    return str(value)


def build_manifest(args, unet, text_encoder, spiece_path, scheduler_config, layers):
    import diffusers
    import sentencepiece as spm
    import transformers

    sp = spm.SentencePieceProcessor(model_file=spiece_path)
    if sp.pad_id() != 0 or sp.eos_id() != 1:
        raise SystemExit(f"error: {spiece_path} does not follow T5 conventions "
                         f"(pad {sp.pad_id()}, eos {sp.eos_id()}; expected 0 and 1)")
    unet_config = json.loads(unet.to_json_string())
    unet_config.pop("_name_or_path", None)
    te_config = text_encoder.config.to_dict()
    te_config.pop("_name_or_path", None)
    missing = [k for k in SCHEDULER_KEYS if k not in scheduler_config]
    if missing:
        raise SystemExit(f"error: scheduler config lacks {missing}")
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": args.name,
        "description": args.description,
        "stage": 1,
        "dtype": args.dtype,
        "image": {"size": int(unet.config.sample_size), "channels": int(unet.config.in_channels)},
        "unet": {
            "file": "unet.pt",
            "in_channels": int(unet.config.in_channels),
            "out_channels": int(unet.config.out_channels),
            "cross_attention_dim": int(unet.config.cross_attention_dim),
            "attention": {
                "query_resolution": args.attention_resolution,
                "num_layers": len(layers),
                "text_tokens": TEXT_TOKENS,
                "layers": layers,
            },
            "config": jsonable(unet_config),
        },
        "text_encoder": {
            "file": "text_encoder.pt",
            "hidden_size": int(text_encoder.config.d_model),
            "config": jsonable(te_config),
        },
        "tokenizer": {"file": "spiece.model", "max_length": TEXT_TOKENS,
                      "pad_id": sp.pad_id(), "eos_id": sp.eos_id()},
        "scheduler": {k: jsonable(scheduler_config[k]) for k in SCHEDULER_KEYS},
        "source": {
            "model": args.source_name or args.source,
            "exported_with": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                              "transformers": transformers.__version__},
        },
    }


def keep_other_parts(outdir, tmp, manifest):
    """Carry over what an existing bundle holds beyond this exporter's parts.

    Optional parts written by other tools (e.g. the noise-aware CLIP's "clip" object and
    its files, docs/bundle.md) survive a re-export: top-level manifest keys this exporter
    does not write are kept, and so are files it does not write.
    """
    old_manifest = os.path.join(outdir, "manifest.json")
    if not os.path.isfile(old_manifest):
        return manifest
    with open(old_manifest) as f:
        old = json.load(f)
    manifest = dict(manifest)
    for key, value in old.items():
        if key not in manifest:
            manifest[key] = value
            log(f"  keeping manifest entry '{key}' of the existing bundle")
    for name in sorted(os.listdir(outdir)):
        src, dst = os.path.join(outdir, name), os.path.join(tmp, name)
        if not os.path.exists(dst) and name != "manifest.json" and os.path.isfile(src):
            shutil.copy2(src, dst)
            log(f"  keeping file {name} of the existing bundle")
    return manifest


def write_bundle(outdir, traced_unet, traced_te, spiece_path, manifest, verify):
    """Write into a temporary sibling folder, verify it, then rename it into place.

    Parts of an existing bundle at OUTDIR that this exporter does not write are kept
    (keep_other_parts).
    """
    outdir = os.path.abspath(outdir)
    if os.path.exists(outdir) and os.listdir(outdir) and \
            not os.path.isfile(os.path.join(outdir, "manifest.json")):
        raise SystemExit(f"error: {outdir} exists and is not a bundle; not replacing it")
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        traced_unet.save(os.path.join(tmp, "unet.pt"))
        traced_te.save(os.path.join(tmp, "text_encoder.pt"))
        shutil.copyfile(spiece_path, os.path.join(tmp, "spiece.model"))
        manifest = keep_other_parts(outdir, tmp, manifest)
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        verify(tmp)
        old = None
        if os.path.exists(outdir):
            old = tempfile.mkdtemp(prefix=".old-bundle-", dir=parent)
            os.rename(outdir, os.path.join(old, "b"))
        os.rename(tmp, outdir)
        if old:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name in sorted(os.listdir(outdir)):
        log(f"  {name}: {os.path.getsize(os.path.join(outdir, name))} bytes")


# ---------------------------------------------------------------------------------------

def parse_args(argv):
    doc_head, doc_rest = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(description=doc_head, epilog=doc_rest,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="local diffusers IF pipeline folder or hub id")
    p.add_argument("outdir", help="bundle folder to write; an existing bundle's UNet, text "
                                  "encoder and tokenizer are replaced, its other parts kept")
    p.add_argument("--name", default=None, help="bundle name (default: OUTDIR's basename)")
    p.add_argument("--description", default=None, help="free-text description")
    p.add_argument("--source-name", default=None,
                   help="what to record as source.model (default: SOURCE as given)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--variant", default=None, help="weights variant to load, e.g. fp16")
    p.add_argument("--attention-resolution", type=int, default=32,
                   help="capture attention layers with this query grid (default 32)")
    args = p.parse_args(argv)
    if args.name is None:
        args.name = os.path.basename(os.path.abspath(args.outdir))
    if args.description is None:
        args.description = f"DeepFloyd IF stage I exported from {args.source_name or args.source}"
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    torch.manual_seed(0)
    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    check_dtype_supported(dtype, device)
    tol = TOLERANCE[dtype]

    unet, text_encoder, spiece, scheduler_config = load_source(args.source, dtype, device,
                                                               args.variant)
    text_dim = text_encoder.config.d_model
    layers, calls = find_attention_layers(unet, args.attention_resolution, text_dim)
    log(f"attention layers ({len(calls)} in all; query counts "
        f"{', '.join(f'{n}={q}' for n, q in calls)})")
    log(f"capturing {len(layers)} layers at {args.attention_resolution}x"
        f"{args.attention_resolution}: {', '.join(layers)}")

    state = install_capture(unet, layers)
    traced_unet = trace_unet(unet, state, text_dim)
    traced_te = trace_text_encoder(text_encoder, spiece)
    n = remove_device_constants(traced_unet) + remove_device_constants(traced_te)
    log(f"replaced {n} device constants with the inputs' device")

    log("verifying the traces")
    verify_unet(traced_unet, unet, state, layers, text_dim, tol)
    verify_maps_explicitly(traced_unet, unet, layers, text_dim, max(tol, 1e-5))
    verify_gradients(traced_unet, unet, layers, text_dim, tol)
    verify_text_encoder(traced_te, text_encoder, spiece, tol)

    manifest = build_manifest(args, unet, text_encoder, spiece, scheduler_config, layers)
    log(f"writing {args.outdir}")
    write_bundle(args.outdir, traced_unet, traced_te, spiece, manifest,
                 lambda d: verify_reloaded(d, traced_unet, traced_te, unet, text_dim, spiece))
    log(f"done in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

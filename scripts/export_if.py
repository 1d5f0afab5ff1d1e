#!/usr/bin/env python3
"""Export DeepFloyd IF (stage I, optionally stage II) to an `anagram` model bundle (docs/bundle.md).

Usage:
    .venv/bin/python scripts/export_if.py STAGE1_SOURCE OUTDIR [--stage2 STAGE2_SOURCE]
        [--name NAME] [--dtype float32|float16|bfloat16] [--device cpu|cuda]
        [--variant fp16] [--attention-resolution 32] [--no-stage2]
    .venv/bin/python scripts/export_if.py --random-init IF-I-M OUTDIR
        [--random-init-stage2 IF-II-M] [--t5-layers 2] [--tokenizer SPIECE] ...

STAGE1_SOURCE is a local diffusers IF stage I pipeline folder (the layout `save_pretrained`
writes: unet/, text_encoder/, tokenizer/, scheduler/) or a Hugging Face hub id such as
DeepFloyd/IF-I-XL-v1.0 (needs network access and an accepted licence; --variant fp16 fetches
the half-precision weights). IF-I-M, IF-I-L and IF-I-XL all export the same way.
STAGE2_SOURCE is an IF stage II (IFSuperResolutionPipeline) folder or hub id
(DeepFloyd/IF-II-M-v1.0, DeepFloyd/IF-II-L-v1.0): only its unet/, scheduler/ and
image_noising_scheduler/ are read; its text encoder is not needed (the stages share stage
I's T5, as IF's pipelines do).

--random-init NAME / --random-init-stage2 NAME build the UNet(s) with NAME's configuration
(RANDOM_INIT_STAGE1 / RANDOM_INIT_STAGE2 below, with where each came from) and random
weights from fixed seeds, so the real-size compute path can be exported, run and timed
without weights. The text encoder is then a stand-in: T5 v1.1 XXL's widths (d_model 4096,
d_ff 10240, 64 heads x 64, vocabulary 32128) with only --t5-layers layers (default 2; the
real one has 24, ~4.7 B parameters, 19 GB in float32), and the tokenizer is --tokenizer
(default: the tiny bundle's models/tiny-if/spiece.model). The pictures are noise; the
manifest description says so.

OUTDIR receives (schema version 2, docs/bundle.md):
    unet.pt           stage I UNet: `forward` and `forward_with_attention`
    unet_stage2.pt    stage II UNet (with --stage2 / --random-init-stage2):
                      forward(sample (B,6,S,S), timestep, text (B,77,D), class_labels (B,))
    text_encoder.pt   T5 encoder: (input_ids, attention_mask) -> last hidden state
    spiece.model      the SentencePiece model, copied from the tokenizer
    manifest.json     everything the C++ program needs, with the sha256 of every file
If OUTDIR already is a bundle (schema 1 or 2), the parts other tools added to it (files,
and manifest entries such as the optional "clip" object) are kept; so is its stage II when
this run exports none (unless --no-stage2), if its text width and dtype still fit.

Phases: load the sources, install a capturing attention processor, trace the UNets (batch 2)
and the text encoder, verify the traces against eager diffusers/transformers (batches 1, 2
and 4, several timesteps and, for stage II, several noise levels; stage I attention maps
against an explicit recomputation and their gradients), make the traced graphs
device-independent, write everything into a temporary folder next to OUTDIR, check the
written files, and rename it into place.

Notes:
  * The traces are made in --dtype on --device and stay in that dtype: the graphs contain
    dtype-dependent constants and branches (T5 layer norm casts, finfo(dtype).min masks),
    so run a bundle in the dtype it was exported in. The device, however, is not baked in:
    every device constant is replaced by the device of the graph's first tensor input, so
    a bundle traced on the CPU should run on CUDA after torch::jit::load(path, device)
    (no device constant is left in the saved code; not yet run on a GPU).
  * float16 needs --device cuda: torch 1.13 has no float16 kernels for most CPU ops.

Check of the real-size path on a CPU (docs/bundle.md "Real-size stand-ins"):
    OMP_NUM_THREADS=2 /usr/bin/time -v .venv/bin/python scripts/export_if.py \\
        --random-init IF-I-M build-py/if-i-m-standin --threads 2
exports the IF-I-M-configured UNet and the 2-layer XXL-width T5 in float32 and checks both
against eager diffusers/transformers on random inputs. Measured on the 2-core development
machine (torch 1.13.1, float32, 2 threads, sharing the
CPU with a C++ build: 97 % CPU on average): 10 min 28 s wall (build 17 s, trace 52 s,
verification 468 s, write + reload check 74 s), peak RSS 8.0 GiB; unet.pt 1.49 GB
(372 M parameters), text_encoder.pt 2.07 GB (517 M); every |traced - eager| was 0.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundle_manifest as bm  # noqa: E402

FORMAT = bm.FORMAT
SCHEMA_VERSION = bm.SCHEMA_VERSION
TEXT_TOKENS = bm.TEXT_TOKENS
SCHEDULER_KEYS = bm.SCHEDULER_KEYS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Largest acceptable |traced - eager| per dtype. Traced and eager code run the same kernels
# on the same shapes, so float32 agrees to rounding noise.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 1e-1}
STAGE2_FILE = "unet_stage2.pt"
DEFAULT_NOISE_LEVEL = 50    # the method's stage II noise level (IF's own default is 250)
SEED_RANDOM_UNET = 0
SEED_RANDOM_UNET2 = 1
SEED_RANDOM_T5 = 2

# ---------------------------------------------------------------------------------------
# Configurations for --random-init / --random-init-stage2.
#
# Where they come from (looked up with the project's search tools; no weights needed):
#  * IF-I-XL: the diffusers unet/config.json of DeepFloyd/IF-I-XL-v1.0 as saved in a
#    fine-tune of it (huggingface.co/lucostiguy11/dreambooth_if unet/config.json,
#    "_name_or_path": "DeepFloyd/IF-I-XL-v1.0"), which agrees with DeepFloyd's original
#    IF-I-XL config.yml (model_channels 704, channel_mult 1,2,3,4, num_res_blocks 3,
#    attention_resolutions 32,16,8, num_head_channels 64, encoder_dim 4096,
#    encoder_channels 2816, att_pool_heads 64; huggingface.co/ckpt/IF-I-XL-v1.0-16bit)
#    under diffusers' scripts/convert_if.py create_unet_diffusers_config. up_block_types
#    was cut off in the copy found and is that function's mirror of down_block_types.
#  * IF-II-L: the diffusers unet/config.json of DeepFloyd/IF-II-L-v1.0 as saved in a
#    fine-tune of it (huggingface.co/williamberman/dreambooth_me_upscale,
#    "_name_or_path": "DeepFloyd/IF-II-L-v1.0"). The copy found was cut off after
#    "resnet_time_scale_shift": "sc...; the remaining keys (resnet_time_scale_shift
#    "scale_shift", sample_size 256, time_embedding_act_fn "gelu", time_embedding_dim
#    = model_channels * channel_mult[-1] = 1280, the mirrored up_block_types) follow
#    convert_if.py get_super_res_unet / superres_create_unet_diffusers_config.
#  * IF-I-M and IF-II-M: their config.json files were NOT found. The configurations below
#    are INFERRED: the IF-I-XL / IF-II-L structure (block types, heads of 64, encoder_dim
#    4096, cross_attention_dim = the last block's width, as convert_if.py derives it) with
#    the base width chosen so that the parameter count matches DeepFloyd's model table
#    (github.com/deep-floyd/IF README: IF-I-M 400M, IF-I-L 900M, IF-I-XL 4.3B, IF-II-M
#    450M, IF-II-L 1.2B). Counted with diffusers 0.24: width 704 gives 4.31 B (XL, exact
#    check of the method), 320 gives 0.94 B (L), 192 gives 0.37 B (M); IF-II width 160
#    gives 1.24 B (L, check), 96 gives 0.48 B (M). Treat IF-I-M / IF-II-M as
#    "IF-M-sized", not as the published networks.
# diffusers fills every key not given here with its default.

def _if_stage1_config(width):
    return dict(
        sample_size=64, in_channels=3, out_channels=6, layers_per_block=3,
        block_out_channels=[width, 2 * width, 3 * width, 4 * width],
        down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                          "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                        "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
        cross_attention_dim=4 * width, encoder_hid_dim=4096, encoder_hid_dim_type="text_proj",
        attention_head_dim=64, addition_embed_type="text", addition_embed_type_num_heads=64,
        cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift",
        act_fn="gelu", norm_num_groups=32, only_cross_attention=False,
        mid_block_scale_factor=1, resnet_out_scale_factor=1.0, resnet_skip_time_act=False)


def _if_stage2_config(width):
    channels = [width * m for m in (1, 2, 4, 6, 8)]
    return dict(
        sample_size=256, in_channels=6, out_channels=6, layers_per_block=[2, 2, 3, 5, 5],
        block_out_channels=channels,
        down_block_types=["ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D",
                          "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                          "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                        "ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D",
                        "ResnetUpsampleBlock2D"],
        cross_attention_dim=channels[-1], encoder_hid_dim=4096,
        encoder_hid_dim_type="text_proj", attention_head_dim=64,
        addition_embed_type="text", addition_embed_type_num_heads=64,
        class_embed_type="timestep", cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu", norm_num_groups=32,
        only_cross_attention=False, time_embedding_act_fn="gelu",
        time_embedding_dim=channels[-1], resnet_skip_time_act=True,
        resnet_out_scale_factor=1.4142271248762552, mid_block_scale_factor=1.4142271248762552)


RANDOM_INIT_STAGE1 = {
    "IF-I-XL": _if_stage1_config(704),   # published (see above)
    "IF-I-L": _if_stage1_config(320),    # inferred from the parameter count
    "IF-I-M": _if_stage1_config(192),    # inferred from the parameter count
}
RANDOM_INIT_STAGE2 = {
    "IF-II-L": _if_stage2_config(160),   # published (see above)
    "IF-II-M": _if_stage2_config(96),    # inferred from the parameter count
}
RANDOM_INIT_SOURCE = {
    "IF-I-XL": "published IF-I-XL-v1.0 unet config", "IF-II-L": "published IF-II-L-v1.0 unet config",
    "IF-I-L": "IF-I-L-sized config inferred from the parameter count",
    "IF-I-M": "IF-I-M-sized config inferred from the parameter count",
    "IF-II-M": "IF-II-M-sized config inferred from the parameter count",
}

# T5 v1.1 XXL (google/t5-v1_1-xxl config.json, the text encoder of every IF stage) with the
# layer count reduced for the stand-in (--t5-layers).
T5_XXL_CONFIG = dict(
    vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_decoder_layers=24,
    num_heads=64, relative_attention_num_buckets=32, relative_attention_max_distance=128,
    dropout_rate=0.1, layer_norm_epsilon=1e-6, initializer_factor=1.0,
    feed_forward_proj="gated-gelu", is_encoder_decoder=True, tie_word_embeddings=False,
    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)

# IF's DDPMScheduler settings. Stage I: DeepFloyd/IF-I-*-v1.0 scheduler/scheduler_config.json
# (also convert_if.py convert_stage_1_pipeline). Stage II: convert_if.py
# convert_super_res_pipeline (the IF-II scheduler_config.json files were not found; that
# script wrote them): "scheduler" with sample_max_value 1.0, and "image_noising_scheduler"
# = DDPMScheduler(beta_schedule="squaredcos_cap_v2"), everything else diffusers' defaults.
IF_STAGE1_SCHEDULER = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
    beta_end=0.02, variance_type="learned_range", prediction_type="epsilon",
    thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5,
    clip_sample=True, clip_sample_range=1.0, timestep_spacing="leading", steps_offset=0)
IF_STAGE2_SCHEDULER = dict(IF_STAGE1_SCHEDULER, sample_max_value=1.0)
IF_STAGE2_NOISING_SCHEDULER = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
    beta_end=0.02, variance_type="fixed_small", prediction_type="epsilon",
    thresholding=False, dynamic_thresholding_ratio=0.995, sample_max_value=1.0,
    clip_sample=True, clip_sample_range=1.0, timestep_spacing="leading", steps_offset=0)


def log(message):
    print(f"[export_if] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# Phase 1: load the source pipeline parts (or build them with random weights).

def _spiece_of(source):
    if os.path.isdir(source):
        path = os.path.join(source, "tokenizer", "spiece.model")
    else:
        from huggingface_hub import hf_hub_download
        path = hf_hub_download(source, "spiece.model", subfolder="tokenizer")
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path} not found (SOURCE must have tokenizer/spiece.model)")
    return path


def load_source(source, dtype, device, variant=None):
    """Stage I: UNet, T5 encoder, tokenizer file and scheduler config from SOURCE."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import T5EncoderModel

    kwargs = {"variant": variant} if variant else {}
    log(f"loading stage I from {source}")
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **kwargs)
    text_encoder = T5EncoderModel.from_pretrained(source, subfolder="text_encoder", **kwargs)
    scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler")
    return _finish_stage1(unet, text_encoder, _spiece_of(source), dict(scheduler.config),
                          dtype, device)


def random_stage1(name, t5_layers, spiece, dtype, device):
    """Stage I with NAME's UNet configuration, the XXL-width T5 stand-in, random weights."""
    from diffusers import UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    if name not in RANDOM_INIT_STAGE1:
        raise SystemExit(f"error: --random-init {name}: known are {sorted(RANDOM_INIT_STAGE1)}")
    if not os.path.isfile(spiece):
        raise SystemExit(f"error: tokenizer {spiece} not found (pass --tokenizer SPIECE)")
    started = time.time()
    torch.manual_seed(SEED_RANDOM_UNET)
    unet = UNet2DConditionModel(**RANDOM_INIT_STAGE1[name])
    torch.manual_seed(SEED_RANDOM_T5)
    t5 = T5EncoderModel(T5Config(**dict(T5_XXL_CONFIG, num_layers=t5_layers)))
    log(f"built {name} UNet ({_count(unet) / 1e6:.0f} M parameters) and a {t5_layers}-layer "
        f"T5-XXL-width encoder ({_count(t5) / 1e6:.0f} M) with random weights in "
        f"{time.time() - started:.1f} s")
    return _finish_stage1(unet, t5, spiece, dict(IF_STAGE1_SCHEDULER), dtype, device)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _finish_stage1(unet, text_encoder, spiece, scheduler_config, dtype, device):
    cfg = unet.config
    if cfg.in_channels != 3 or cfg.out_channels != 6:
        raise SystemExit("error: stage I must be an IF stage I UNet (3 input, 6 output "
                         f"channels); this one has {cfg.in_channels} -> {cfg.out_channels}")
    if cfg.encoder_hid_dim is not None and cfg.encoder_hid_dim != text_encoder.config.d_model:
        raise SystemExit(f"error: UNet expects {cfg.encoder_hid_dim}-d text states, "
                         f"the text encoder gives {text_encoder.config.d_model}")
    unet = unet.to(device=device, dtype=dtype).eval().requires_grad_(False)
    text_encoder = text_encoder.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return unet, text_encoder, spiece, scheduler_config


def load_stage2_source(source, dtype, device, variant=None):
    """Stage II: UNet, scheduler config and image-noising scheduler config from SOURCE."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    kwargs = {"variant": variant} if variant else {}
    log(f"loading stage II from {source}")
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **kwargs)
    scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler")
    noising = DDPMScheduler.from_pretrained(source, subfolder="image_noising_scheduler")
    return _finish_stage2(unet, dict(scheduler.config), dict(noising.config), dtype, device)


def random_stage2(name, dtype, device):
    from diffusers import UNet2DConditionModel

    if name not in RANDOM_INIT_STAGE2:
        raise SystemExit(f"error: --random-init-stage2 {name}: known are "
                         f"{sorted(RANDOM_INIT_STAGE2)}")
    started = time.time()
    torch.manual_seed(SEED_RANDOM_UNET2)
    unet = UNet2DConditionModel(**RANDOM_INIT_STAGE2[name])
    log(f"built {name} UNet ({_count(unet) / 1e6:.0f} M parameters) with random weights in "
        f"{time.time() - started:.1f} s")
    return _finish_stage2(unet, dict(IF_STAGE2_SCHEDULER), dict(IF_STAGE2_NOISING_SCHEDULER),
                          dtype, device)


def _finish_stage2(unet, scheduler_config, noising_config, dtype, device):
    cfg = unet.config
    if cfg.in_channels != 6 or cfg.out_channels != 6:
        raise SystemExit("error: stage II must be an IF stage II UNet (6 input channels: "
                         "noisy picture + upscaled stage I picture; 6 output channels); this "
                         f"one has {cfg.in_channels} -> {cfg.out_channels}")
    if cfg.class_embed_type != "timestep":
        raise SystemExit("error: stage II UNet must take the noise level as class labels "
                         f"(class_embed_type 'timestep'); it has {cfg.class_embed_type!r}")
    unet = unet.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return unet, scheduler_config, noising_config


def stage2_text_dim(unet2):
    cfg = unet2.config
    return cfg.encoder_hid_dim if cfg.encoder_hid_dim is not None else cfg.cross_attention_dim


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
# Stage II: the super-resolution UNet (no attention capture: no anti-segregation there).

class Stage2UNetBundleModule(torch.nn.Module):
    """forward(sample (B,6,S,S), timestep 0-d int64, text (B,77,D), class_labels (B,) int64).

    sample = [noisy picture (3), noise-augmented upscaled stage I picture (3)];
    class_labels = the augmentation noise level of each batch entry; returns
    [epsilon (3), learned_range variance (3)]."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, class_labels):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         class_labels=class_labels, return_dict=False)[0]


def check_added_kv(unet, what):
    from diffusers.models.attention_processor import (AttnAddedKVProcessor,
                                                      AttnAddedKVProcessor2_0)
    for name, proc in unet.attn_processors.items():
        if not isinstance(proc, (AttnAddedKVProcessor, AttnAddedKVProcessor2_0,
                                 CapturingAddedKVProcessor)):
            raise SystemExit(f"error: {what} {name} uses {type(proc).__name__}; an IF UNet "
                             "uses added-KV attention (AttnAddedKVProcessor) everywhere")


def stage2_inputs(unet, text_dim, batch, dtype, device, seed=0, timestep=500, levels=None):
    g = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    sample = torch.randn(batch, unet.config.in_channels, size, size, generator=g)
    states = torch.randn(batch, TEXT_TOKENS, text_dim, generator=g)
    if levels is None:
        levels = [DEFAULT_NOISE_LEVEL] * batch
    return (sample.to(device=device, dtype=dtype),
            torch.tensor(timestep, dtype=torch.int64, device=device),
            states.to(device=device, dtype=dtype),
            torch.tensor(levels, dtype=torch.int64, device=device))


def trace_unet_stage2(unet, text_dim):
    check_added_kv(unet, "stage II layer")
    # The same processor as stage I's, capturing nothing: diffusers' AttnAddedKVProcessor
    # math without the device constant of Attention.get_attention_scores.
    install_capture(unet, [])
    module = Stage2UNetBundleModule(unet).eval()
    inputs = stage2_inputs(unet, text_dim, 2, unet.dtype, unet.device, levels=[50, 250])
    log("tracing the stage II UNet (batch 2): forward")
    return trace_quietly(lambda: torch.jit.trace(module, inputs, check_trace=False))


STAGE2_CASES = [  # (batch, timestep, noise levels, seed)
    (1, 999, [50], 21), (2, 500, [0, 250], 22), (4, 0, [50, 50, 50, 50], 23),
    (4, 250, [999, 1, 50, 300], 24), (1, 17, [1], 25), (2, 666, [50, 50], 26)]


def verify_unet_stage2(traced, unet, text_dim, tol):
    """Traced vs eager diffusers (its own AttnAddedKVProcessor): batches, timesteps, levels."""
    from diffusers.models.attention_processor import AttnAddedKVProcessor

    ours = unet.attn_processors
    unet.set_attn_processor(AttnAddedKVProcessor())
    worst = 0.0
    try:
        for batch, timestep, levels, seed in STAGE2_CASES:
            x, t, s, c = stage2_inputs(unet, text_dim, batch, unet.dtype, unet.device, seed,
                                       timestep, levels)
            with torch.no_grad():
                expected = unet(x, t, encoder_hidden_states=s, class_labels=c).sample
                got = traced(x, t, s, c)
            d = _max_diff(got, expected)
            worst = max(worst, d)
            log(f"  stage II unet batch {batch} t={timestep} noise levels {levels}: "
                f"|traced-eager| {d:.2e}")
            if d > tol or tuple(got.shape) != tuple(expected.shape):
                raise SystemExit(f"error: traced stage II UNet differs from eager diffusers by {d:.3g}")
        # The noise level must matter (class_labels reach the network).
        x, t, s, c = stage2_inputs(unet, text_dim, 2, unet.dtype, unet.device, 27, 400, [0, 999])
        with torch.no_grad():
            a = traced(x, t, s, c)
            b = traced(x, t, s, torch.tensor([999, 0], device=c.device))
        if not _max_diff(a, b) > 0:
            raise SystemExit("error: the stage II UNet ignores its class labels (noise level)")
    finally:
        unet.set_attn_processor(ours)
    return worst


def verify_reloaded_stage2(bundle_dir, traced, unet, text_dim):
    device = unet.device
    loaded = torch.jit.load(os.path.join(bundle_dir, STAGE2_FILE), map_location=device)
    x, t, s, c = stage2_inputs(unet, text_dim, 2, unet.dtype, device, 31, 100, [50, 123])
    with torch.no_grad():
        a, b = loaded(x, t, s, c), traced(x, t, s, c)
    if not torch.equal(a, b):
        raise SystemExit(f"error: {STAGE2_FILE} does not reproduce the trace")
    device_type = torch._C.DeviceObjType.get()
    left = sum(1 for _, graph in _script_methods(loaded)
               for node in graph.findAllNodes("prim::Constant")
               if node.output().type() == device_type)
    if left:
        raise SystemExit(f"error: {STAGE2_FILE} still holds {left} device constants")
    log(f"  reloaded {STAGE2_FILE} reproduces the trace; "
        f"{sum(p.numel() for p in loaded.parameters())} values")


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


def _unet_config(unet):
    config = json.loads(unet.to_json_string())
    config.pop("_name_or_path", None)
    return jsonable(config)


def _scheduler_entry(config, what):
    missing = [k for k in SCHEDULER_KEYS if k not in config]
    if missing:
        raise SystemExit(f"error: {what} config lacks {missing}")
    return {k: jsonable(config[k]) for k in SCHEDULER_KEYS}


def stage1_entry(unet, scheduler_config, layers, attention_resolution):
    return {
        "stage": 1,
        "image": {"size": int(unet.config.sample_size), "channels": 3},
        "unet": {
            "file": "unet.pt",
            "in_channels": int(unet.config.in_channels),
            "out_channels": int(unet.config.out_channels),
            "cross_attention_dim": int(unet.config.cross_attention_dim),
            "attention": {
                "query_resolution": attention_resolution,
                "num_layers": len(layers),
                "text_tokens": TEXT_TOKENS,
                "layers": layers,
            },
            "config": _unet_config(unet),
        },
        "scheduler": _scheduler_entry(scheduler_config, "stage I scheduler"),
    }


def stage2_entry(unet, scheduler_config, noising_config, noise_level):
    return {
        "stage": 2,
        "image": {"size": int(unet.config.sample_size), "channels": 3},
        "unet": {
            "file": STAGE2_FILE,
            "in_channels": int(unet.config.in_channels),
            "out_channels": int(unet.config.out_channels),
            "cross_attention_dim": int(unet.config.cross_attention_dim),
            "class_labels": "noise_level",
            "config": _unet_config(unet),
        },
        "scheduler": _scheduler_entry(scheduler_config, "stage II scheduler"),
        "noising_scheduler": _scheduler_entry(noising_config, "stage II image_noising_scheduler"),
        "default_noise_level": int(noise_level),
    }


def build_manifest(args, unet, text_encoder, spiece_path, scheduler_config, layers, stage2):
    import diffusers
    import sentencepiece as spm
    import transformers

    sp = spm.SentencePieceProcessor(model_file=spiece_path)
    if sp.pad_id() != 0 or sp.eos_id() != 1:
        raise SystemExit(f"error: {spiece_path} does not follow T5 conventions "
                         f"(pad {sp.pad_id()}, eos {sp.eos_id()}; expected 0 and 1)")
    te_config = text_encoder.config.to_dict()
    te_config.pop("_name_or_path", None)
    stages = [stage1_entry(unet, scheduler_config, layers, args.attention_resolution)]
    if stage2 is not None:
        unet2, sched2, noising2 = stage2
        stages.append(stage2_entry(unet2, sched2, noising2, args.noise_level))
    source = {"model": args.source_name or args.source}
    if stage2 is not None:
        source["stage2_model"] = args.stage2_source_name or args.stage2_source
    source["exported_with"] = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                               "transformers": transformers.__version__}
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": args.name,
        "description": args.description,
        "dtype": args.dtype,
        "text_encoder": {
            "file": "text_encoder.pt",
            "hidden_size": int(text_encoder.config.d_model),
            "config": jsonable(te_config),
        },
        "tokenizer": {"file": "spiece.model", "max_length": TEXT_TOKENS,
                      "pad_id": sp.pad_id(), "eos_id": sp.eos_id()},
        "stages": stages,
        "source": source,
    }


def keep_other_parts(outdir, tmp, manifest, keep_stage2=True):
    """Carry over what an existing bundle (schema 1 or 2) holds beyond this export.

    Optional parts written by other tools (e.g. the noise-aware CLIP's "clip" object and
    its files) survive a re-export: top-level manifest keys this exporter does not write
    are kept, and so are files it does not write. An existing stage II is kept when this
    export has none, unless keep_stage2 is False or its text width / dtype no longer fit.
    """
    if not os.path.isfile(os.path.join(outdir, bm.MANIFEST)):
        return manifest
    old = bm.load(outdir)
    manifest = dict(manifest)
    for key, value in old.items():
        if key in manifest or key.startswith("_") or key in ("files", "stages") or \
                key in bm.V1_STAGE_KEYS:
            continue
        manifest[key] = value
        log(f"  keeping manifest entry '{key}' of the existing bundle")
    dropped = set()
    old2 = bm.stage(old, 2)
    if old2 is not None and bm.stage(manifest, 2) is None:
        width = old2["unet"]["config"].get("encoder_hid_dim") or \
            old2["unet"]["config"].get("cross_attention_dim")
        reason = None
        if not keep_stage2:
            reason = "--no-stage2"
        elif width != manifest["text_encoder"]["hidden_size"]:
            reason = (f"it takes {width}-d text states, the new text encoder gives "
                      f"{manifest['text_encoder']['hidden_size']}")
        elif old.get("dtype") != manifest["dtype"]:
            reason = f"it is {old.get('dtype')}, this export {manifest['dtype']}"
        if reason is None:
            manifest["stages"] = manifest["stages"] + [old2]
            if "stage2_model" in old.get("source", {}):
                src = manifest["source"]
                manifest["source"] = {"model": src["model"],
                                      "stage2_model": old["source"]["stage2_model"],
                                      "exported_with": src["exported_with"]}
            log(f"  keeping the existing stage II ({old2['unet']['file']})")
        else:
            dropped.add(old2["unet"]["file"])
            log(f"  dropping the existing stage II: {reason}")
    for name in sorted(os.listdir(outdir)):
        src, dst = os.path.join(outdir, name), os.path.join(tmp, name)
        if name in dropped or name == bm.MANIFEST or name.startswith("."):
            continue
        if not os.path.exists(dst) and os.path.isfile(src):
            shutil.copy2(src, dst)
            log(f"  keeping file {name} of the existing bundle")
    return manifest


def write_bundle(outdir, files, manifest, verify, keep_stage2=True):
    """Write into a temporary sibling folder, verify it, then rename it into place.

    files: {bundle file name: callable(path) writing it}. Parts of an existing bundle at
    OUTDIR that this exporter does not write are kept (keep_other_parts). The manifest's
    "files" object gets the sha256 and size of every file it names."""
    outdir = os.path.abspath(outdir)
    if os.path.exists(outdir) and os.listdir(outdir) and \
            not os.path.isfile(os.path.join(outdir, bm.MANIFEST)):
        raise SystemExit(f"error: {outdir} exists and is not a bundle; not replacing it")
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        for name, write in files.items():
            write(os.path.join(tmp, name))
        manifest = keep_other_parts(outdir, tmp, manifest, keep_stage2)
        manifest["files"] = bm.file_entries(tmp, manifest)
        bm.write(tmp, manifest)
        problems = bm.check_files(tmp, bm.load(tmp))
        if problems:
            raise SystemExit("error: written bundle fails its own file check: " + "; ".join(problems))
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
    return manifest


# ---------------------------------------------------------------------------------------

def parse_args(argv):
    doc_head, doc_rest = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(description=doc_head, epilog=doc_rest,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="STAGE1_SOURCE OUTDIR",
                   help="stage I pipeline folder or hub id, then the bundle folder to write "
                        "(with --random-init: only OUTDIR)")
    p.add_argument("--stage2", dest="stage2_source", default=None, metavar="STAGE2_SOURCE",
                   help="IF stage II pipeline folder or hub id to export as unet_stage2.pt")
    p.add_argument("--random-init", default=None, metavar="NAME",
                   help=f"stage I with NAME's configuration and random weights: "
                        f"{', '.join(sorted(RANDOM_INIT_STAGE1))}")
    p.add_argument("--random-init-stage2", default=None, metavar="NAME",
                   help=f"stage II with NAME's configuration and random weights: "
                        f"{', '.join(sorted(RANDOM_INIT_STAGE2))}")
    p.add_argument("--t5-layers", type=int, default=2,
                   help="layers of the XXL-width T5 stand-in of --random-init (default 2)")
    p.add_argument("--tokenizer", default=os.path.join(ROOT, "models", "tiny-if", "spiece.model"),
                   help="SentencePiece model for --random-init (default: the tiny bundle's)")
    p.add_argument("--no-stage2", action="store_true",
                   help="drop an existing bundle's stage II instead of keeping it")
    p.add_argument("--noise-level", type=int, default=DEFAULT_NOISE_LEVEL,
                   help=f"stage II default_noise_level in the manifest (default {DEFAULT_NOISE_LEVEL})")
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
    if args.random_init or args.random_init_stage2:
        parts = []
        if args.random_init:
            parts.append(f"stage I: {args.random_init} UNet ({RANDOM_INIT_SOURCE[args.random_init]})")
        else:
            parts.append(f"stage I exported from {args.source_name or args.source}")
        if args.random_init_stage2:
            parts.append(f"stage II: {args.random_init_stage2} UNet "
                         f"({RANDOM_INIT_SOURCE[args.random_init_stage2]})")
        elif args.stage2_source:
            parts.append(f"stage II exported from {args.stage2_source_name or args.stage2_source}")
        text = "RANDOM WEIGHTS, real-size compute stand-in; " + "; ".join(parts)
        if args.random_init:
            text += (f"; text encoder: T5 v1.1 XXL widths (d_model 4096, d_ff 10240, 64 heads x 64) "
                     f"with only {args.t5_layers} of its 24 layers, tokenizer "
                     f"{os.path.relpath(args.tokenizer, ROOT) if args.tokenizer.startswith(ROOT) else args.tokenizer}"
                     " (not T5's). Pictures are noise.")
        return text
    text = f"DeepFloyd IF stage I exported from {args.source_name or args.source}"
    if args.stage2_source:
        text += f", stage II from {args.stage2_source_name or args.stage2_source}"
    return text


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    torch.manual_seed(0)
    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    check_dtype_supported(dtype, device)
    tol = TOLERANCE[dtype]

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
    traced_unet = trace_unet(unet, state, text_dim)
    traced_te = trace_text_encoder(text_encoder, spiece)
    traced_unet2 = trace_unet_stage2(stage2[0], text_dim) if stage2 is not None else None
    n = remove_device_constants(traced_unet) + remove_device_constants(traced_te)
    if traced_unet2 is not None:
        n += remove_device_constants(traced_unet2)
    log(f"traced in {time.time() - phase:.1f} s; replaced {n} device constants with the "
        "inputs' device")

    phase = time.time()
    log("verifying the traces")
    verify_unet(traced_unet, unet, state, layers, text_dim, tol)
    verify_maps_explicitly(traced_unet, unet, layers, text_dim, max(tol, 1e-5))
    verify_gradients(traced_unet, unet, layers, text_dim, tol)
    verify_text_encoder(traced_te, text_encoder, spiece, tol)
    if traced_unet2 is not None:
        verify_unet_stage2(traced_unet2, stage2[0], text_dim, tol)
    log(f"verified in {time.time() - phase:.1f} s")

    manifest = build_manifest(args, unet, text_encoder, spiece, scheduler_config, layers, stage2)
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
    log(f"done in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

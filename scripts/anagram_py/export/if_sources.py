"""Phase 1 of the IF export: load the pipeline parts from a folder or hub id, or build them
with a published configuration and random weights (--random-init), on the export's device and
dtype, in eval mode without gradients."""
import os
import time

import torch

from .. import if_configs
from .if_common import log

SEED_RANDOM_UNET = 0
SEED_RANDOM_UNET2 = 1
SEED_RANDOM_T5 = 2


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

    if name not in if_configs.RANDOM_INIT_STAGE1:
        raise SystemExit(f"error: --random-init {name}: known are "
                         f"{sorted(if_configs.RANDOM_INIT_STAGE1)}")
    if not os.path.isfile(spiece):
        raise SystemExit(f"error: tokenizer {spiece} not found (pass --tokenizer SPIECE)")
    started = time.time()
    torch.manual_seed(SEED_RANDOM_UNET)
    unet = UNet2DConditionModel(**if_configs.RANDOM_INIT_STAGE1[name])
    torch.manual_seed(SEED_RANDOM_T5)
    t5 = T5EncoderModel(T5Config(**dict(if_configs.T5_XXL, num_layers=t5_layers)))
    log(f"built {name} UNet ({_count(unet) / 1e6:.0f} M parameters) and a {t5_layers}-layer "
        f"T5-XXL-width encoder ({_count(t5) / 1e6:.0f} M) with random weights in "
        f"{time.time() - started:.1f} s")
    return _finish_stage1(unet, t5, spiece, dict(if_configs.STAGE1_SCHEDULER), dtype, device)


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
    """Stage II with NAME's UNet configuration and random weights."""
    from diffusers import UNet2DConditionModel

    if name not in if_configs.RANDOM_INIT_STAGE2:
        raise SystemExit(f"error: --random-init-stage2 {name}: known are "
                         f"{sorted(if_configs.RANDOM_INIT_STAGE2)}")
    started = time.time()
    torch.manual_seed(SEED_RANDOM_UNET2)
    unet = UNet2DConditionModel(**if_configs.RANDOM_INIT_STAGE2[name])
    log(f"built {name} UNet ({_count(unet) / 1e6:.0f} M parameters) with random weights in "
        f"{time.time() - started:.1f} s")
    return _finish_stage2(unet, dict(if_configs.STAGE2_SCHEDULER),
                          dict(if_configs.STAGE2_NOISING_SCHEDULER), dtype, device)


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



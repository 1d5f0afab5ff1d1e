"""What the IF exporter's phases share: its log, dtypes, bundle constants and example inputs."""
import torch

from .. import manifest as bm

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TEXT_TOKENS = bm.TEXT_TOKENS
STAGE2_FILE = "unet_stage2.pt"
DEFAULT_NOISE_LEVEL = 50    # the method's stage II noise level (IF's own default is 250)


def log(message):
    print(f"[export_if] {message}", flush=True)


def example_inputs(unet, text_dim, batch, dtype, device, seed=0, timestep=500):
    """Stage I UNet inputs: (sample (B,3,S,S), timestep 0-d int64, text (B,77,D)), N(0,1)."""
    g = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    sample = torch.randn(batch, unet.config.in_channels, size, size, generator=g)
    states = torch.randn(batch, TEXT_TOKENS, text_dim, generator=g)
    return (sample.to(device=device, dtype=dtype),
            torch.tensor(timestep, dtype=torch.int64, device=device),
            states.to(device=device, dtype=dtype))


def stage2_inputs(unet, text_dim, batch, dtype, device, seed=0, timestep=500, levels=None):
    """Stage II UNet inputs: example_inputs (6 channels) plus class_labels (B,) int64."""
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

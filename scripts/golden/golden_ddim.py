"""Golden values of diffusers' DDIMScheduler as the x4 upscaler configures it (stage III,
docs/stage3.md), for a C++ test written like tests/test_ddpm_scheduler.cpp.

Run from the repository root with the project venv (diffusers 0.24.0, torch 1.13):
    PYTHONPATH=scripts .venv/bin/python scripts/golden/golden_ddim.py
Writes tests/golden/ddim_upscaler.pt (tensors only; see scripts/anagram_py/golden_io.py):

  upscaler_config_json       the DDIMScheduler config (JSON bytes, sd_upscaler_configs.SCHEDULER_X4:
                             scaled_linear 0.0001..0.02, v_prediction, steps_offset 1,
                             set_alpha_to_one False, clip_sample False, "leading")
  upscaler_alphas_cumprod    (1000,) float32
  upscaler_final_alpha_cumprod  () the "previous" alpha product of the last step (alphas_cumprod[0])
  ts_<n>, prevt_<n>          timesteps of set_timesteps(n) and each step's previous timestep
                             (t - 1000 // n; -1000 // n ... < 0 means final_alpha_cumprod)
  upscaler_n<n>_eta<e>_{x,mo,noise,prev,x0,ts}
                             a sampling loop driven by a fixed dummy v-prediction model: per step
                             the input sample, the model output (v), the variance noise (zeros when
                             eta = 0, which is the pipeline's default), prev_sample and
                             pred_original_sample; sample shape (2, 4, 8, 8)
  lowres_config_json, lowres_alphas_cumprod, addnoise_{original,noise,levels,out}
                             the low-res scheduler (DDPMScheduler, same betas) and its add_noise at
                             the noise levels 0, 20 (the pipeline default) and 350 (its maximum)
"""
import json
import math
import os

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from anagram_py.golden_io import save_tensors
from anagram_py.paths import GOLDEN_DIR
from anagram_py.sd_upscaler_configs import LOW_RES_SCHEDULER_X4, SCHEDULER_X4

OUT = os.path.join(GOLDEN_DIR, "ddim_upscaler.pt")
SHAPE = (2, 4, 8, 8)
LOOPS = [(7, 0.0, 31), (5, 1.0, 33)]  # (steps, eta, seed)
COUNTS = [1, 2, 3, 7, 16, 20, 50, 61, 75, 100, 103, 250, 333, 999]


def dummy_v(sample, t):
    """A fixed function of (sample, t) standing in for the UNet's v prediction; the second
    batch entry is larger."""
    b = sample.shape[0]
    amp = torch.linspace(0.8, 1.6, b).reshape(b, 1, 1, 1)
    return (amp * torch.sin(1.3 * sample + 0.002 * t) - 0.2 * sample).float()


def run_loop(steps, eta, seed):
    scheduler = DDIMScheduler(**SCHEDULER_X4)
    scheduler.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=gen)
    rec = {k: [] for k in ("x", "mo", "noise", "prev", "x0")}
    for t in scheduler.timesteps:
        t = int(t)
        mo = dummy_v(x, t)
        # With eta > 0 the step draws randn(shape) from `gen`: draw the same numbers here.
        state = gen.get_state()
        noise = torch.randn(SHAPE, generator=gen) if eta > 0 else torch.zeros(SHAPE)
        after = gen.get_state()
        gen.set_state(state)
        out = scheduler.step(mo, t, x, eta=eta, generator=gen)
        assert torch.equal(gen.get_state(), after), "the step drew other noise than ours"
        for key, value in (("x", x), ("mo", mo), ("noise", noise), ("prev", out.prev_sample),
                           ("x0", out.pred_original_sample)):
            rec[key].append(value)
        x = out.prev_sample
    tensors = {k: torch.stack(v) for k, v in rec.items()}
    tensors["ts"] = scheduler.timesteps.clone()
    return tensors


def main():
    golden = {}
    scheduler = DDIMScheduler(**SCHEDULER_X4)
    golden["upscaler_config_json"] = torch.tensor(list(json.dumps(SCHEDULER_X4).encode()),
                                                  dtype=torch.uint8)
    golden["upscaler_alphas_cumprod"] = scheduler.alphas_cumprod.clone()
    golden["upscaler_final_alpha_cumprod"] = scheduler.final_alpha_cumprod.clone()
    for n in COUNTS:
        scheduler.set_timesteps(n)
        golden[f"ts_{n}"] = scheduler.timesteps.clone()
        golden[f"prevt_{n}"] = scheduler.timesteps - 1000 // n
    for steps, eta, seed in LOOPS:
        for k, v in run_loop(steps, eta, seed).items():
            golden[f"upscaler_n{steps}_eta{int(eta)}_{k}"] = v

    low = DDPMScheduler(**LOW_RES_SCHEDULER_X4)
    golden["lowres_config_json"] = torch.tensor(list(json.dumps(LOW_RES_SCHEDULER_X4).encode()),
                                                dtype=torch.uint8)
    golden["lowres_alphas_cumprod"] = low.alphas_cumprod.clone()
    gen = torch.Generator().manual_seed(7)
    original = torch.rand((3, 3, 4, 4), generator=gen) * 2 - 1
    noise = torch.randn((3, 3, 4, 4), generator=gen)
    levels = torch.tensor([0, 20, 350])
    golden["addnoise_original"] = original
    golden["addnoise_noise"] = noise
    golden["addnoise_levels"] = levels
    golden["addnoise_out"] = low.add_noise(original, noise, levels)

    save_tensors(OUT, golden)
    abar = scheduler.alphas_cumprod
    print(f"alphas_cumprod[0] {abar[0]:.6f}, [999] {abar[999]:.3e} (sqrt {math.sqrt(abar[999]):.4f})")
    print(f"wrote {len(golden)} tensors to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()

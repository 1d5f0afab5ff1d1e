"""Golden values of diffusers' DDPMScheduler for tests/test_ddpm_scheduler.cpp.

Run from the repository root with the project venv (diffusers 0.24.0, torch 1.13):
    .venv/bin/python scripts/golden/golden_ddpm.py
Writes tests/golden/ddpm_if.pt (tensors only; see scripts/anagram_py/golden_io.py). For every
scheduler config below it records the config itself (JSON bytes, so the C++ test parses exactly
the same config with DDPMSchedulerConfig::from_json), alphas_cumprod, the timesteps, and a full
sampling loop driven by a deterministic dummy model with explicit noise: per step the input
sample, the model output, the noise, prev_sample and pred_original_sample.
"""
import json
import math
import os

import torch
from diffusers import DDPMScheduler

from anagram_py.golden_io import save_tensors
from anagram_py.paths import GOLDEN_DIR

OUT = os.path.join(GOLDEN_DIR, "ddpm_if.pt")

IF_STAGE_I = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001, beta_end=0.02,
    variance_type="learned_range", prediction_type="epsilon", clip_sample=True,
    clip_sample_range=1.0, thresholding=True, dynamic_thresholding_ratio=0.95,
    sample_max_value=1.5, timestep_spacing="leading", steps_offset=0)

# name -> (config, sample shape (B, C, H, W), list of inference step counts to run)
CONFIGS = {
    "if1": (IF_STAGE_I, (2, 3, 8, 8), [30, 7]),
    # Stage II: thresholding to at most 1.0, non-square images.
    "if2": (dict(IF_STAGE_I, sample_max_value=1.0), (2, 3, 6, 10), [7]),
    # Plain clipping, a non-learned log variance, linear betas.
    "linclip": (dict(IF_STAGE_I, beta_schedule="linear", variance_type="fixed_small_log",
                     thresholding=False, clip_sample=True), (2, 3, 8, 8), [7]),
    # v-prediction, no clipping, scaled_linear betas, trailing spacing.
    "vpred": (dict(IF_STAGE_I, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                   variance_type="fixed_small", prediction_type="v_prediction",
                   thresholding=False, clip_sample=False, timestep_spacing="trailing"),
              (2, 3, 8, 8), [7]),
    # x0 prediction, fixed_large, clip range 2, steps_offset 1 (noise is added at the last step).
    "x0pred": (dict(IF_STAGE_I, beta_schedule="linear", variance_type="fixed_large",
                    prediction_type="sample", thresholding=False, clip_sample_range=2.0,
                    steps_offset=1), (2, 3, 8, 8), [7]),
    # The model's variance channels are the variance itself; linspace spacing.
    "learned": (dict(IF_STAGE_I, variance_type="learned", thresholding=False, clip_sample=False,
                     timestep_spacing="linspace"), (2, 3, 8, 8), [7]),
}


def dummy_model(sample, t, variance_type):
    """A fixed function of (sample, t): (B, 2C, H, W). Its epsilon part is wrong enough that x0
    leaves [-1, 1] (so thresholding and clipping act); the second batch entry is larger."""
    b = sample.shape[0]
    amp = torch.linspace(1.0, 2.5, b).reshape(b, 1, 1, 1)
    eps = amp * torch.sin(1.7 * sample + 0.003 * t) + 0.3 * sample
    v = torch.tanh(0.8 * sample + math.cos(0.002 * t))  # in [-1, 1] for learned_range
    if variance_type == "learned":
        v = 0.001 + 0.01 * torch.sigmoid(sample)  # a positive variance
    return torch.cat([eps, v], dim=1).float()


def run_loop(config, shape, steps, seed):
    scheduler = DDPMScheduler(**config)
    scheduler.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    rec = {k: [] for k in ("x", "mo", "noise", "prev", "x0")}
    quantiles = []
    for t in scheduler.timesteps:
        t = int(t)
        mo = dummy_model(x, t, config["variance_type"])
        c = shape[1]
        # The step draws randn(B, C, H, W) from `gen` when t > 0: draw the same numbers here.
        state = gen.get_state()
        noise = torch.randn(shape, generator=gen) if t > 0 else torch.zeros(shape)
        after_draw = gen.get_state()
        gen.set_state(state)
        learned = config["variance_type"].startswith("learned")
        out = scheduler.step(mo if learned else mo[:, :c], t, x, generator=gen)
        assert torch.equal(gen.get_state(), after_draw), "the step drew other noise than ours"
        abar = scheduler.alphas_cumprod[t]
        raw_x0 = (x - (1 - abar) ** 0.5 * mo[:, :c]) / abar ** 0.5
        quantiles.append(torch.quantile(raw_x0.reshape(shape[0], -1).abs(), 0.95, dim=1))
        for key, value in (("x", x), ("mo", mo), ("noise", noise), ("prev", out.prev_sample),
                           ("x0", out.pred_original_sample)):
            rec[key].append(value)
        x = out.prev_sample
    tensors = {k: torch.stack(v) for k, v in rec.items()}
    tensors["ts"] = scheduler.timesteps.clone()
    return tensors, torch.stack(quantiles)


def main():
    golden = {}
    for seed, (name, (config, shape, step_counts)) in enumerate(CONFIGS.items()):
        golden[f"{name}_config_json"] = torch.tensor(list(json.dumps(config).encode()),
                                                     dtype=torch.uint8)
        scheduler = DDPMScheduler(**config)
        golden[f"{name}_alphas_cumprod"] = scheduler.alphas_cumprod.clone()
        for steps in step_counts:
            tensors, q = run_loop(config, shape, steps, seed=1234 + seed)
            for k, v in tensors.items():
                golden[f"{name}_n{steps}_{k}"] = v
            if config["thresholding"]:
                print(f"{name} n={steps}: 0.95-quantile of |x0| per step and sample:\n"
                      f"{q.T.numpy().round(2)}")

    # Timesteps of every spacing for a range of step counts (including numpy arange's quirk:
    # 'trailing' with 61 or 103 steps gives one extra timestep, -1).
    counts = [1, 2, 3, 7, 16, 30, 50, 61, 100, 103, 250, 333, 999, 1000]
    for label, kwargs in (("leading", dict(timestep_spacing="leading")),
                          ("leadingoff1", dict(timestep_spacing="leading", steps_offset=1)),
                          ("trailing", dict(timestep_spacing="trailing")),
                          ("linspace", dict(timestep_spacing="linspace"))):
        scheduler = DDPMScheduler(**dict(IF_STAGE_I, **kwargs))
        for n in counts:
            if label == "leadingoff1" and n == 1000:
                continue  # would reach timestep 1000
            scheduler.set_timesteps(n)
            golden[f"ts_{label}_{n}"] = scheduler.timesteps.clone()
            golden[f"prevt_{label}_{n}"] = torch.tensor(
                [int(scheduler.previous_timestep(int(t))) for t in scheduler.timesteps])

    # add_noise, as stage II noises its low-res input.
    scheduler = DDPMScheduler(**IF_STAGE_I)
    gen = torch.Generator().manual_seed(7)
    original = torch.rand((3, 3, 4, 4), generator=gen) * 2 - 1
    noise = torch.randn((3, 3, 4, 4), generator=gen)
    timesteps = torch.tensor([0, 250, 999])
    golden["addnoise_original"] = original
    golden["addnoise_noise"] = noise
    golden["addnoise_t"] = timesteps
    golden["addnoise_out"] = scheduler.add_noise(original, noise, timesteps)
    golden["addnoise_out250"] = scheduler.add_noise(original, noise, torch.tensor([250] * 3))

    save_tensors(OUT, golden)
    print(f"wrote {len(golden)} tensors to {OUT}")


if __name__ == "__main__":
    main()

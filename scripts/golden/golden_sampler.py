#!/usr/bin/env python3
"""Golden run of the *baseline* visual-anagram sampler (Geng et al.), stage I, in Python.

Usage (from the repository root):
    .venv/bin/python scripts/golden/golden_sampler.py [--bundle models/tiny-if]
                            [--out tests/golden/sampler_baseline.pt] [--check-pipeline]

--check-pipeline first runs the same loop with a single identity view and prompt and
checks it reproduces diffusers' IFPipeline(...) output exactly (it does: max diff 0).

It rebuilds eager diffusers/transformers models from the bundle alone
(scripts/anagram_py/golden/eager.py: UNet2DConditionModel
and T5EncoderModel from manifest.json's configs, weights from the state_dict of unet.pt
and text_encoder.pt with the wrapper prefix stripped, transformers T5Tokenizer on the
bundle's spiece.model), so the golden depends only on committed files. It then runs
ALGORITHM.md stage I steps 1-4, 7 and 8 with alpha_k = 1/N and c = 1 (no balancing, no
rectification, no anti-segregation), with the parameters below, the way the published
baseline code drives diffusers:
  * prompts lower()/strip()ped like IFPipeline._text_preprocessing; negative prompt ""
    encoded the same way (padding to 77, truncation, eos, attention mask to the encoder);
  * one CPU torch.Generator seeded with SEED: the initial noise randn((1,3,64,64)), then
    the noise DDPMScheduler.step(..., generator=...) draws at every step but the last
    (shape (1,3,64,64): the epsilon half of the model output);
  * UNet batch [v_1(x)..v_N(x), v_1(x)..v_N(x)] with text [neg x N, pos_1..pos_N];
    u_k, c_k = inverse views of the two halves (all 6 channels);
    eps_k = u_k[:3] + g (c_k[:3] - u_k[:3]); var_k = c_k[3:];
    model output = cat(mean_k eps_k, mean_k var_k); x = DDPM step.

Tensors in the file (scripts/anagram_py/golden_io.py save_tensors, read by tests/golden_io.h),
float32 unless noted:
  guidance (0-d), num_steps, seed (0-d int64), prompts_utf8, negative_prompt_utf8,
  views_utf8 (uint8 UTF-8 bytes; prompts and views joined by "\\n"),
  timesteps (steps,) int64, initial_noise (1,3,64,64),
  prompt_ids, prompt_mask (N,77) int64, negative_ids, negative_mask (1,77) int64,
  prompt_embeds (N,77,D), negative_embeds (1,77,D),
  unet_input_step0 (2N,3,64,64), unet_output_step0 (2N,6,64,64) (the raw batch at step 0),
  step_noise (steps,1,3,64,64) (the scheduler's noise per step; zeros at the last step,
  where none is drawn), model_outputs (steps,1,6,64,64) (the combined [eps, var]),
  x_steps (steps,1,3,64,64) (x after each step; the last is the result).
"""
import argparse
import sys

import torch

from anagram_py.golden.eager import encode, load_bundle
from anagram_py.golden.views import inverse_view, view
from anagram_py.golden_io import save_tensors, utf8

# ---------------------------------------------------------------------------------------
# Parameters of the golden run (also stored in the file).
BUNDLE = "models/tiny-if"
PROMPTS = ["dog", "cat"]
NEGATIVE_PROMPT = ""
VIEWS = ["identity", "rotate_180"]
GUIDANCE = 10.0
NUM_STEPS = 10
SEED = 0


@torch.no_grad()
def run(bundle):
    unet, text_encoder, tokenizer, scheduler = load_bundle(bundle)
    n = len(VIEWS)
    assert len(PROMPTS) == n

    prompt_ids, prompt_mask, prompt_embeds = encode(PROMPTS, tokenizer, text_encoder)
    neg_ids, neg_mask, negative_embeds = encode([NEGATIVE_PROMPT], tokenizer, text_encoder)
    text = torch.cat([negative_embeds.expand(n, -1, -1), prompt_embeds])

    scheduler.set_timesteps(NUM_STEPS)
    generator = torch.Generator("cpu").manual_seed(SEED)
    size = unet.config.sample_size
    x = torch.randn((1, 3, size, size), generator=generator, dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    initial_noise = x.clone()

    out = {"x_steps": [], "model_outputs": [], "step_noise": []}
    for i, t in enumerate(scheduler.timesteps):
        viewed = torch.cat([view(v, x) for v in VIEWS])
        model_input = scheduler.scale_model_input(torch.cat([viewed, viewed]), t)
        raw = unet(model_input, t, encoder_hidden_states=text).sample
        if i == 0:
            out["unet_input_step0"], out["unet_output_step0"] = model_input, raw
        uncond, cond = raw[:n], raw[n:]
        eps, var = [], []
        for k, v in enumerate(VIEWS):
            u_k = inverse_view(v, uncond[k:k + 1])
            c_k = inverse_view(v, cond[k:k + 1])
            eps.append(u_k[:, :3] + GUIDANCE * (c_k[:, :3] - u_k[:, :3]))
            var.append(c_k[:, 3:])
        model_output = torch.cat([torch.stack(eps, 1).mean(1), torch.stack(var, 1).mean(1)], 1)

        # The noise step() is about to draw, read from a copy of the generator's state.
        peek = torch.Generator("cpu")
        peek.set_state(generator.get_state())
        noise = torch.randn(x.shape, generator=peek, dtype=x.dtype) if t > 0 else torch.zeros_like(x)

        x = scheduler.step(model_output, t, x, generator=generator).prev_sample
        out["x_steps"].append(x)
        out["model_outputs"].append(model_output)
        out["step_noise"].append(noise)
        assert torch.equal(peek.get_state(), generator.get_state()), "noise draw mismatch"
        print(f"step {i} t={int(t)}: |eps| {model_output[:, :3].std():.3f} "
              f"var [{model_output[:, 3:].min():.2f}, {model_output[:, 3:].max():.2f}] "
              f"x [{x.min():.3f}, {x.max():.3f}]")

    tensors = {
        "guidance": torch.tensor(GUIDANCE, dtype=torch.float32),
        "num_steps": torch.tensor(NUM_STEPS, dtype=torch.int64),
        "seed": torch.tensor(SEED, dtype=torch.int64),
        "prompts_utf8": utf8("\n".join(PROMPTS)),
        "negative_prompt_utf8": utf8(NEGATIVE_PROMPT),
        "views_utf8": utf8("\n".join(VIEWS)),
        "timesteps": scheduler.timesteps.to(torch.int64),
        "initial_noise": initial_noise,
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "negative_ids": neg_ids, "negative_mask": neg_mask,
        "prompt_embeds": prompt_embeds, "negative_embeds": negative_embeds,
        "unet_input_step0": out["unet_input_step0"],
        "unet_output_step0": out["unet_output_step0"],
        "step_noise": torch.stack(out["step_noise"]),
        "model_outputs": torch.stack(out["model_outputs"]),
        "x_steps": torch.stack(out["x_steps"]),
    }
    for name, value in tensors.items():
        if value.is_floating_point():
            assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
    return tensors


def check_against_ifpipeline(bundle):
    """With one identity view this loop is plain IF: compare with IFPipeline itself."""
    global PROMPTS, VIEWS
    from diffusers import IFPipeline

    unet, text_encoder, tokenizer, scheduler = load_bundle(bundle)
    pipe = IFPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
                      scheduler=scheduler, safety_checker=None, feature_extractor=None,
                      watermarker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(prompt=PROMPTS[0], negative_prompt=NEGATIVE_PROMPT,
                    num_inference_steps=NUM_STEPS, guidance_scale=GUIDANCE,
                    generator=torch.Generator("cpu").manual_seed(SEED), output_type="pt").images
    saved = PROMPTS, VIEWS
    PROMPTS, VIEWS = PROMPTS[:1], ["identity"]
    try:
        got = run(bundle)["x_steps"][-1]
    finally:
        PROMPTS, VIEWS = saved
    diff = (got - expected).abs().max().item()
    print(f"single identity view vs IFPipeline: max |diff| {diff:.2e}")
    if diff > 1e-5:
        raise SystemExit("error: the sampling loop does not reproduce IFPipeline")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--bundle", default=BUNDLE)
    parser.add_argument("--out", default="tests/golden/sampler_baseline.pt")
    parser.add_argument("--check-pipeline", action="store_true",
                        help="first check that the loop with one identity view reproduces "
                             "diffusers' IFPipeline exactly")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # deterministic reductions
    if args.check_pipeline:
        check_against_ifpipeline(args.bundle)
    tensors = run(args.bundle)
    save_tensors(args.out, tensors)
    print(f"wrote {args.out}: " + ", ".join(f"{k}{tuple(v.shape)}" for k, v in tensors.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

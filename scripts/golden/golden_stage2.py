#!/usr/bin/env python3
"""Golden run of stage II (64 -> 256 super-resolution) of the multi-task method, in Python.

Usage (from the repository root):
    .venv/bin/python scripts/golden/golden_stage2.py [--bundle models/tiny-if]
        [--out tests/golden/sampler_stage2.pt] [--check-pipeline]

The eager modules are rebuilt from the bundle's files alone (scripts/anagram_py/golden/
eager.py load_bundle / load_stage2: diffusers UNet2DConditionModel for both stages,
transformers T5EncoderModel, T5Tokenizer on spiece.model; load_clip: the tiny noise-aware
CLIP). The loops are scripts/anagram_py/golden/sampling_loops.py (check_bundle.py replays
them with the traced files). One CPU torch.Generator seeded with SEED draws, in this
order: stage I's initial noise (1,3,64,64), stage I's step noise at every stage I step but
the last, stage II's initial noise (1,3,256,256) (times init_noise_sigma), the low-res
augmentation noise (1,3,256,256), stage II's step noise at every stage II step but the last.

Stage I (STAGE1_STEPS steps) is the BASELINE sampler (Geng et al.: mean of the views'
guided estimates, no balancing, no rectification, no anti-segregation), as
scripts/golden/golden_sampler.py runs it; it only has to produce a 64x64 picture for stage II.

Stage II (STAGE2_STEPS steps) follows Pixtella/Anagram-MTL visual_anagrams/samplers_mtl.py
sample_stage_2 (lines 175-300, HEAD 9767fcf) with the method's combiner:
  * upscaled = F.interpolate(stage I result, (256, 256), bilinear, align_corners=True)
    (l.216; IFSuperResolutionPipeline.preprocess_image only moves a tensor to the UNet's
    device/dtype, l.215); noise_level = tensor([50]); aug = randn(upscaled.shape) (l.219);
    lowres = image_noising_scheduler.add_noise(upscaled, aug, noise_level) (l.220);
    class labels = noise_level repeated 2N times (l.223).
  * each step: model_input = cat([x, lowres], dim=1) (6 channels, l.228);
    X_k = v_k(model_input) on all 6 channels (view_fn.view(model_input[0]), l.231-234);
    UNet batch [X_1..X_N, X_1..X_N] (l.238; scale_model_input is the identity) with text
    [neg x N, pos_1..pos_N] (l.197) and class_labels = 50 for all 2N entries (l.242-249);
    u_k, c_k = inverse views of the two halves on all 6 channels (l.256-267);
    eps_k = u_k[:3] + g (c_k[:3] - u_k[:3]); var_k = c_k[3:] (l.270-272).
  * noise vector balancing IS applied in stage II (l.280, visual_anagrams/mtl.py:44-60 with
    stage=2): s_k = cosine(ImageEmbedder(resize64(X_k[:3] / 2 + 0.5), t), TextEmbedder(p_k))
    with t = the stage II timestep of this step for every task (mtl.py:37), the step index
    i of the stage II loop in the exponent -(1 + i/30) (quirk, as in stage I), float32
    numpy power (mtl.py:56), normalised. Clamped here to s >= MIN_SCORE (the published code
    has no clamp; none is clamped in this run, scores_clamped records it).
  * noise variance rectification IS applied in stage II (l.281, mtl.py:62-74): rho_kl =
    mean(eps_k * eps_l) over the 3*256*256 elements, c = 1/sqrt(sum alpha_k^2 +
    2 sum_{k<l} rho_kl alpha_k alpha_l); eps = sum (alpha_k c) eps_k; var = sum alpha_k var_k
    (l.282-290).
  * x = DDPMScheduler(stage II config).step(cat[eps, var], t, x, generator) (l.295-297):
    the stage II scheduler thresholds with sample_max_value 1.0.
  * no anti-segregation in stage II (the published sample_stage_2 has none).

Where the published code differs from a plain reading of ALGORITHM.md (the C++ should
follow the published code; also in NOTES_stage2.md):
  1. CLIP input order: the published code divides the viewed 256x256 picture first and
     resizes second (mtl.py:53 passes viewed[:, :3] / 2 + 0.5 into
     calc_alignment_noise_aware, which resizes each image with torchvision
     transforms.Resize((64, 64)), mtl.py:24-28). Bilinear weights sum to 1, so
     resize(X/2 + 0.5) = resize(X)/2 + 0.5 up to float rounding (~1e-7); this script
     follows the published order. torchvision 0.16.1 (environment.yml) resizes tensors
     bilinearly, align_corners=False, without antialiasing (its "warn" default means no
     antialias before 0.17), i.e. F.interpolate(..., mode="bilinear", align_corners=False,
     antialias=False); torchvision itself is not needed here.
  2. The noise level reaches the UNet as class_labels of every batch entry, both CFG
     halves (l.223): 2N labels, not N.
  3. The views act on all 6 input channels (the noisy picture AND the upscaled condition),
     and the inverse views on all 6 output channels. For the views of this run (identity,
     rotate_180) that is a plain permutation of all channels; the published NegateView
     negates all 6 input channels (view_negate.py:12-13) but only the 3 epsilon channels of
     the output (view_negate.py:15-22): the variance is not negated, as in stage I.
  4. The exponent's step index restarts at 0 in stage II (enumerate over stage II's
     timesteps, l.226) and is divided by 30 whatever the step count (quirk, as in stage I).
  5. The published pipeline runs stage II in float16 on CUDA (conti_runner.py:37-42); this
     golden is float32 on the CPU, one thread.
--check-pipeline additionally checks the loop itself: with one identity view, one prompt
and balancing/rectification off (alpha = 1, c = 1), it must reproduce diffusers'
IFSuperResolutionPipeline fed the same stage I picture, prompt embeds, generator state and
noise_level (output_type "pt"); the difference is printed (it is 0 on the development
machine).

Tensors in the file (scripts/golden_io.save_tensors; float32 unless noted). N = 2 tasks,
D = T5 width, E = CLIP width, S1 = STAGE1_STEPS, S2 = STAGE2_STEPS. To keep the file small,
every 256x256 tensor except `result` is stored CROPPED to its first CROP_ROWS rows
(all 256 columns): shapes (..., CROP_ROWS, 256) below are rows [0, CROP_ROWS).
  settings: guidance, exponent_divisor (30), min_score (0-d); seed, stage1_num_steps,
    stage2_num_steps, noise_level, crop_rows (0-d int64); prompts_utf8,
    negative_prompt_utf8, views_utf8 (uint8 UTF-8, joined by "\\n")
  text: prompt_ids, prompt_mask (N,77) int64; negative_ids, negative_mask (1,77) int64;
    prompt_embeds (N,77,D); negative_embeds (1,77,D); clip_tokens (N,77) int64,
    clip_lengths (N,) int64, clip_text_emb (N,E)
  stage I (baseline): stage1_timesteps (S1,) int64; stage1_initial_noise (1,3,64,64);
    stage1_step_noise (S1,1,3,64,64) (zeros at the last step: no draw); stage1_x_steps
    (S1,1,3,64,64) x after each step; stage1_result (1,3,64,64) = stage1_x_steps[-1]
  stage II inputs: stage2_timesteps (S2,) int64; stage2_initial_noise (1,3,R,256) (the
    draw times init_noise_sigma = 1); aug_noise (1,3,R,256); upscaled (1,3,R,256);
    lowres (1,3,R,256) = add_noise(upscaled, aug_noise, noise_level); class_labels (2N,)
    int64 (all noise_level)
  stage II step 0 raw UNet call: unet_input_step0 (N,6,R,256): [X_1..X_N], the first half
    of the (2N,6,256,256) batch [X; X]; unet_output_step0 (2N,6,R,256) the raw output
    (uncond entries 0..N-1, cond entries N..2N-1, views NOT undone);
    clip_images_step0 (N,3,64,64): resize64(X_k[:3] / 2 + 0.5), what the CLIP image
    encoder gets at step 0 (before its own (x + 1) * 127.5)
  stage II per step i: clip_sim (S2,N,N) (rows images, columns prompts); scores (S2,N) its
    diagonal; scores_clamped (S2,) int64; exponents (S2,) -(1 + i/30);
    weights_unnormalised (S2,N); weights (S2,N) alpha (sum 1); rho (S2,N,N) mean(eps_k
    eps_l) (diagonal mean(eps_k^2), informational); rect_scale (S2,) c;
    model_outputs (S2,1,6,R,256) [eps, var] given to the scheduler; step_noise
    (S2,1,3,R,256) (zeros at the last step); x_steps (S2,1,3,R,256) x after each step
  result (1,3,256,256): the final 256x256 picture, full size (= x_steps[-1] uncropped)
"""
import argparse
import os
import sys
import time

import torch

from anagram_py.golden.eager import encode, load_bundle, load_clip, load_stage2
from anagram_py.golden.sampling_loops import (EXPONENT_DIVISOR, GUIDANCE, MIN_SCORE,
                                              stage1_baseline, stage2_method)
from anagram_py.golden_io import save_tensors, utf8

# ---------------------------------------------------------------------------------------
# Parameters of the golden run (also stored in the file).
BUNDLE = "models/tiny-if"
PROMPTS = ["dog", "cat"]
NEGATIVE_PROMPT = ""
VIEWS = ["identity", "rotate_180"]
SEED = 0
STAGE1_STEPS = 4
STAGE2_STEPS = 4
NOISE_LEVEL = 50
CROP_ROWS = 32              # 256x256 tensors are stored as their first CROP_ROWS rows
# GUIDANCE, EXPONENT_DIVISOR, MIN_SCORE, CLIP_SIZE: anagram_py.golden.sampling_loops (shared
# with check_bundle.py's replay).


def load_models(bundle):
    unet, text_encoder, tokenizer, scheduler = load_bundle(bundle)
    loaded = load_stage2(bundle)
    if loaded is None:
        raise SystemExit(f"error: {bundle} has no stage II")
    unet2, scheduler2, noising2, entry = loaded
    (clip_img, _), (clip_txt, _), bpe = load_clip(bundle)
    for m in (unet, text_encoder, unet2):
        m.requires_grad_(False)
    return unet, text_encoder, tokenizer, scheduler, unet2, scheduler2, noising2, entry, \
        clip_img, clip_txt, bpe


def fresh(scheduler):
    return type(scheduler).from_config(scheduler.config)


def check_against_pipeline(unet2, scheduler2, noising2, stage1_result, prompt_embeds,
                           negative_embeds, state, clip_img, clip_text_emb):
    """One identity view, one prompt, no balancing/rectification vs IFSuperResolutionPipeline."""
    from diffusers import IFSuperResolutionPipeline

    pipe = IFSuperResolutionPipeline(
        tokenizer=None, text_encoder=None, unet=unet2, scheduler=fresh(scheduler2),
        image_noising_scheduler=fresh(noising2), safety_checker=None, feature_extractor=None,
        watermarker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator("cpu")
    g.set_state(state)
    expected = pipe(image=stage1_result, prompt_embeds=prompt_embeds[:1],
                    negative_prompt_embeds=negative_embeds, num_inference_steps=STAGE2_STEPS,
                    guidance_scale=GUIDANCE, noise_level=NOISE_LEVEL, generator=g,
                    output_type="pt").images
    g = torch.Generator("cpu")
    g.set_state(state)
    text = torch.cat([negative_embeds, prompt_embeds[:1]])
    models = (unet2, fresh(scheduler2), fresh(noising2), clip_img, clip_text_emb[:1])
    got, _ = stage2_method(models, stage1_result, text, g, ["identity"], STAGE2_STEPS,
                           NOISE_LEVEL, balance=False, rectify=False)
    diff = (got - expected).abs().max().item()
    print(f"stage II loop, one identity view, no balancing/rectification, vs "
          f"IFSuperResolutionPipeline: max |diff| {diff:.3g} (|x| up to {expected.abs().max():.3f})")
    if diff > 1e-6:
        raise SystemExit("error: the stage II loop does not reproduce IFSuperResolutionPipeline")
    return diff


def crop(t):
    return t[..., :CROP_ROWS, :].contiguous()


@torch.no_grad()
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=BUNDLE)
    parser.add_argument("--out", default="tests/golden/sampler_stage2.pt")
    parser.add_argument("--check-pipeline", action="store_true",
                        help="also check the loop against diffusers' IFSuperResolutionPipeline")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # deterministic reductions
    started = time.time()
    n = len(VIEWS)
    assert len(PROMPTS) == n

    (unet, text_encoder, tokenizer, scheduler, unet2, scheduler2, noising2, entry, clip_img,
     clip_txt, bpe) = load_models(args.bundle)
    assert entry["default_noise_level"] == NOISE_LEVEL, entry["default_noise_level"]
    prompt_ids, prompt_mask, prompt_embeds = encode(PROMPTS, tokenizer, text_encoder)
    neg_ids, neg_mask, negative_embeds = encode([NEGATIVE_PROMPT], tokenizer, text_encoder)
    text = torch.cat([negative_embeds.expand(n, -1, -1), prompt_embeds])
    clip_tokens, clip_lengths = bpe.tokens_and_lengths(PROMPTS, 77)
    clip_text_emb = clip_txt(clip_tokens, clip_lengths)

    generator = torch.Generator("cpu").manual_seed(SEED)
    stage1_result, rec1 = stage1_baseline(unet, scheduler, text, generator, VIEWS, STAGE1_STEPS)
    state = generator.get_state()

    check_diff = None
    if args.check_pipeline:
        check_diff = check_against_pipeline(unet2, scheduler2, noising2, stage1_result,
                                            prompt_embeds, negative_embeds, state, clip_img,
                                            clip_text_emb)
    generator.set_state(state)
    models = (unet2, scheduler2, noising2, clip_img, clip_text_emb)
    _, rec2 = stage2_method(models, stage1_result, text, generator, VIEWS, STAGE2_STEPS,
                            NOISE_LEVEL)

    f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    i64 = lambda v: torch.tensor(v, dtype=torch.int64)  # noqa: E731
    tensors = {
        "guidance": f32(GUIDANCE), "exponent_divisor": f32(EXPONENT_DIVISOR),
        "min_score": f32(MIN_SCORE),
        "seed": i64(SEED), "stage1_num_steps": i64(STAGE1_STEPS),
        "stage2_num_steps": i64(STAGE2_STEPS), "noise_level": i64(NOISE_LEVEL),
        "crop_rows": i64(CROP_ROWS),
        "prompts_utf8": utf8("\n".join(PROMPTS)),
        "negative_prompt_utf8": utf8(NEGATIVE_PROMPT),
        "views_utf8": utf8("\n".join(VIEWS)),
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "negative_ids": neg_ids, "negative_mask": neg_mask,
        "prompt_embeds": prompt_embeds, "negative_embeds": negative_embeds,
        "clip_tokens": clip_tokens, "clip_lengths": clip_lengths, "clip_text_emb": clip_text_emb,
    }
    tensors.update(rec1)
    cropped = {"stage2_initial_noise", "aug_noise", "upscaled", "lowres", "unet_input_step0",
               "unet_output_step0", "model_outputs", "step_noise", "x_steps"}
    for key, value in rec2.items():
        tensors[key] = crop(value) if key in cropped else value
    assert torch.equal(tensors["stage1_result"], tensors["stage1_x_steps"][-1])
    for name, value in tensors.items():
        assert value.dtype != torch.float64, name
        if value.is_floating_point():
            assert torch.isfinite(value).all(), name
    save_tensors(args.out, tensors)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB) in {time.time() - started:.1f} s"
          + (f"; pipeline check max |diff| {check_diff:.3g}" if check_diff is not None else ""))
    for k, v in tensors.items():
        print(f"  {k} {str(v.dtype).replace('torch.', '')}{tuple(v.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

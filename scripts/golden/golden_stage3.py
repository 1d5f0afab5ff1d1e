"""Golden values of stage III (Stable Diffusion's x4 upscaler, docs/stage3.md) on the tiny
variant exported into models/tiny-if/stage3/: the diffusers pipeline, the program's multi-view
algorithm in eps space, and diffusers' tiled VAE decoding, for the C++ tests.

Run from the repository root with the project venv (diffusers 0.24.0, transformers 4.35.2,
torch 1.13), after `export_sd_upscaler.py --tiny models/tiny-if`:
    PYTHONPATH=scripts .venv/bin/python scripts/golden/golden_stage3.py
Writes tests/golden/stage3_pipeline.pt (tensors only; see scripts/anagram_py/golden_io.py).
All float32 on the CPU unless said otherwise.

Models: rebuilt with sd_upscaler.build_random("tiny") (the exporter's seeds, so its weights);
first checked against the bundle's TorchScript files (stage3/unet.pt, text_encoder.pt,
vae_decoder.pt) on probe inputs: a mismatch exits with "re-export models/tiny-if stage III".
Everything below is computed with the EAGER diffusers/transformers modules.

  ids_dog, ids_cat, ids_empty  (77,) int64: "dog", "cat", "" with the CLIP BPE convention
                               [49406] + bpe[:75] + [49407] + 0 up to 77 (BPETokenizer of the
                               manifest's stage3.tokenizer.bpe_vocab)
  emb_dog, emb_cat, emb_empty  (1, 77, D) last_hidden_state of the tiny text encoder, one
                               prompt per call (D = 8 for the tiny variant)
  lowres                       (1, 3, 32, 32) torch.Generator seeded 7, rand * 2 - 1 (its
                               minimum is < 0, so the pipeline takes it as [-1, 1] unchanged)
  seed, steps, noise_level     int64 scalars 1234, 6, 20; guidance float32 9.0
  pipe_config_json             uint8 JSON bytes: the settings, prompts, scheduler configs
  vae_scaling_factor           () 0.08333

 Pipeline (diffusers StableDiffusionUpscalePipeline from the tiny parts; tokenizer None since
 prompt_embeds=emb_dog and negative_prompt_embeds=emb_empty are passed; DDIMScheduler(
 **SCHEDULER_X4), low_res_scheduler DDPMScheduler(**LOW_RES_SCHEDULER_X4), max_noise_level 350;
 image=lowres, 6 steps, guidance 9, noise_level 20, eta 0, generator seeded 1234,
 output_type "latent"):
  pipe_noise_aug       (1, 3, 32, 32) draw 1: randn of the picture's shape (noise augmentation)
  pipe_noise_latents   (1, 4, 32, 32) draw 2: randn of the latent shape (initial latents;
                       init_noise_sigma is 1). Both checked against the pipeline's own
                       randn_tensor calls, in this order, and against a fresh generator.
  pipe_lowres_noised   (1, 3, 32, 32) low_res_scheduler.add_noise(lowres, pipe_noise_aug, [20])
  pipe_timesteps       (6,) int64 [831, 665, 499, 333, 167, 1] (leading: 5 * 166 + 1, ...)
  pipe_latents         (1, 4, 32, 32) final latents (before decoding)
  pipe_picture         (1, 3, 128, 128) vae.decode(pipe_latents / scaling_factor).sample, no
                       tiling, before postprocessing (about [-1, 1], not clamped)

 Multi-view reference (the program's algorithm, run_multiview below): tasks (identity, "dog")
 and (rot180, "cat"), rot180 = flip of H and W on all channels (its own inverse); the same two
 draws from a fresh generator seeded 1234; per step t (a = alphas_cumprod[t]):
   inp = cat([latents, lowres_noised], 1) (1,7,..); vi = cat([view_k(inp)]) (N,7,..)
   out = unet(cat([vi, vi]), t, cat([emb_empty] * N + [emb_dog, emb_cat]),
              class_labels=full((2N,), 20))               (unconditional half first)
   u_k = inv_view_k(out[k]), c_k = inv_view_k(out[N + k]); v_k = u_k + g (c_k - u_k)
   eps_k = sqrt(a) v_k + sqrt(1 - a) latents
   baseline:  eps = mean_k eps_k
   rectified: w_k = 1/N, rho = flat flat^T / numel (flat = eps reshaped (N, -1)),
              c = rsqrt(sum_k w_k^2 + 2 w^T triu(rho, 1) w), eps = c sum_k w_k eps_k
              (MultiTaskCombiner::rectification_scale; no clamp, no guard)
   v = (eps - sqrt(1 - a) latents) / sqrt(a); latents = ddim.step(v, t, latents, eta=0)
  mv_baseline_latents, mv_rectified_latents     (1, 4, 32, 32) final latents
  mv_baseline_first_eps                         (1, 4, 32, 32) combined eps of the first step
  mv_rectified_first_eps, mv_rectified_first_scale   the same for the rectified run, and c
  mv_rectified_scales                           (6,) c of each step
  The same loop with N = 1 (identity, "dog") reproduces pipe_latents (checked, 1e-5).

 Tiled decoding (diffusers 0.24 AutoencoderKL.enable_tiling(); decode() tiles when the latent
 height or width exceeds tile_latent_min_size):
  tiled_latents_40     (1, 4, 40, 40) torch.Generator seeded 40, randn
  tiled_picture_40     (1, 3, 160, 160) tiled decode of tiled_latents_40 / scaling_factor
  vae_tile_latent, vae_tile_sample, vae_tile_overlap_size, vae_tile_blend_extent,
  vae_tile_row_limit   int64 scalars 16, 64, 12, 16, 48; vae_tile_overlap_factor () 0.25

 diffusers 0.24 tiled_decode(z), exactly (the tiny VAE: sample_size 64, 3 blocks):
   tile_sample_min_size = config.sample_size = 64 (pixels)
   tile_latent_min_size = int(sample_size / 2 ** (len(block_out_channels) - 1)) = 16
   tile_overlap_factor  = 0.25
   overlap_size = int(tile_latent_min_size * (1 - 0.25)) = 12   (latent stride of tiles)
   blend_extent = int(tile_sample_min_size * 0.25) = 16         (pixels)
   row_limit    = tile_sample_min_size - blend_extent = 48      (pixels kept per tile)
   (the real x4 VAE config, sample_size 128: 32, 128, 24, 32, 96.)
   Tiles: for i in range(0, H, 12), for j in range(0, W, 12): z[:, :, i:i+16, j:j+16] (the
   last ones are cut by the border: 32 latents -> tiles at 0, 12, 24 of 16, 16, 8 latents;
   40 -> 0, 12, 24, 36 of 16, 16, 16, 4), each decoded = decoder(post_quant_conv(tile)) to
   4x its size. Then row by row (i), tile by tile (j), IN PLACE on the decoded tiles:
     if i > 0: tile = blend_v(rows[i-1][j], tile)   # top rows
     if j > 0: tile = blend_h(row[j-1], tile)       # left columns
     keep tile[:, :, :48, :48]                      # crop after blending
   blend_v(a, b): e = min(a.H, b.H, 16); for y in 0..e-1:
       b[:, :, y, :] = a[:, :, -e + y, :] * (1 - y / e) + b[:, :, y, :] * (y / e)
   blend_h(a, b): e = min(a.W, b.W, 16); for x in 0..e-1:
       b[:, :, :, x] = a[:, :, :, -e + x] * (1 - x / e) + b[:, :, :, x] * (x / e)
   The neighbours a are the already blended tiles (rows[i-1][j] has had its own top rows and
   left columns blended, in place, when row i-1 was processed; row[j-1] has been blended
   vertically and horizontally), and they are read uncropped (a's last 16 rows/columns lie
   beyond the 48 it keeps). Row i's result is cat over j (width), the picture cat over i.
   The weights (1 - y/e), y/e are Python floats multiplied into float32 tensors.
"""
import json
import os
import sys

import torch
from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_upscale as upscale_module

from anagram_py import manifest as bm
from anagram_py.export import sd_upscaler
from anagram_py.glide_clip import BPETokenizer
from anagram_py.golden_io import save_tensors
from anagram_py.paths import GOLDEN_DIR, TINY_BUNDLE
from anagram_py.sd_upscaler_configs import LOW_RES_SCHEDULER_X4, MAX_NOISE_LEVEL, SCHEDULER_X4

OUT = os.path.join(GOLDEN_DIR, "stage3_pipeline.pt")
SEED, STEPS, GUIDANCE, NOISE_LEVEL = 1234, 6, 9.0, 20
LOWRES_SIZE, LOWRES_SEED, TILED40_SEED = 32, 7, 40
TRIES = 5  # recomputations of non-finite results (docs/stage3.md: intermittent NaN here)
REEXPORT = ("re-export models/tiny-if stage III (PYTHONPATH=scripts .venv/bin/python "
            "scripts/export/export_sd_upscaler.py --tiny models/tiny-if)")


def log(message):
    print(f"[golden_stage3] {message}", flush=True)


def finite(compute, what):
    """compute() until its result (a tensor or a tuple of tensors) is all finite: the tiny
    random UNet gives NaN now and then on this torch (sd_upscaler.finite_pair)."""
    for attempt in range(TRIES):
        out = compute()
        parts = out if isinstance(out, tuple) else (out,)
        if all(torch.isfinite(p).all() for p in parts):
            if attempt:
                log(f"  note: {what} was non-finite {attempt} time(s) before (recomputed)")
            return out
    raise SystemExit(f"error: {what}: non-finite {TRIES} times (docs/stage3.md)")


# ----------------------------------------------------------------------------- models
def load_models():
    m = bm.load(TINY_BUNDLE)
    s3 = m.get("stage3")
    if not isinstance(s3, dict):
        raise SystemExit(f"error: {TINY_BUNDLE} has no stage3; {REEXPORT}")
    problems = bm.check_files(TINY_BUNDLE, m)
    if problems:
        raise SystemExit(f"error: {problems}; {REEXPORT}")
    parts = sd_upscaler.build_random("tiny")  # the exporter's seeds: the exporter's weights
    for key in ("unet", "vae", "text"):
        parts[key] = parts[key].eval().requires_grad_(False)
    traced = {key: torch.jit.load(os.path.join(TINY_BUNDLE, s3[key]["file"]))
              for key in ("unet", "text_encoder", "vae_decoder")}
    bpe = BPETokenizer(os.path.join(TINY_BUNDLE, s3["tokenizer"]["bpe_vocab"]))
    check_against_bundle(parts, traced, bpe)
    return parts, bpe, s3


def check_against_bundle(parts, traced, bpe):
    unet, vae, text = parts["unet"], parts["vae"], parts["text"]
    cpu = torch.device("cpu")
    worst = {}
    with torch.no_grad():
        x, t, s, c = sd_upscaler.unet_inputs(unet, 2, 16, torch.float32, cpu, 61, 500, [20, 350])
        e, g = finite(lambda: (unet(x, t, encoder_hidden_states=s, class_labels=c).sample,
                               traced["unet"](x, t, s, c)), "UNet probe")
        worst["unet"] = (e - g).abs().max().item() if e.shape == g.shape else float("inf")
        ids, _ = bpe.tokens_and_lengths(["dog", "cat", ""], sd_upscaler.TEXT_TOKENS)
        e, g = text(ids).last_hidden_state, traced["text_encoder"](ids)
        worst["text_encoder"] = (e - g).abs().max().item() if e.shape == g.shape else float("inf")
        z = sd_upscaler.latents(vae, 1, 8, torch.float32, cpu, 62)
        e, g = vae.decode(z / vae.config.scaling_factor).sample, traced["vae_decoder"](z)
        worst["vae_decoder"] = (e - g).abs().max().item() if e.shape == g.shape else float("inf")
    log("bundle files vs the rebuilt models: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    if not all(v <= 1e-5 for v in worst.values()):
        raise SystemExit(f"error: models/tiny-if stage III differs from build_random('tiny') "
                         f"({worst}); {REEXPORT}")


# ----------------------------------------------------------------------------- pieces
def decode(vae, latents, tiled=False):
    """vae.decode(latents / scaling_factor).sample, with or without diffusers' tiling."""
    vae.enable_tiling(tiled)
    try:
        with torch.no_grad():
            return vae.decode(latents / vae.config.scaling_factor).sample
    finally:
        vae.disable_tiling()


def draws(seed):
    """The pipeline's two draws from a fresh generator, in its order."""
    g = torch.Generator("cpu").manual_seed(seed)
    aug = torch.randn((1, 3, LOWRES_SIZE, LOWRES_SIZE), generator=g)
    lat = torch.randn((1, 4, LOWRES_SIZE, LOWRES_SIZE), generator=g)
    return aug, lat


def run_pipeline(parts, lowres, emb_dog, emb_empty):
    pipe = StableDiffusionUpscalePipeline(
        vae=parts["vae"], text_encoder=parts["text"], tokenizer=None, unet=parts["unet"],
        low_res_scheduler=DDPMScheduler(**LOW_RES_SCHEDULER_X4),
        scheduler=DDIMScheduler(**SCHEDULER_X4), max_noise_level=MAX_NOISE_LEVEL)
    pipe.set_progress_bar_config(disable=True)
    recorded = []
    original = upscale_module.randn_tensor

    def recording(shape, *args, **kwargs):  # the pipeline's draws, in its order
        out = original(shape, *args, **kwargs)
        recorded.append(out.clone())
        return out

    def once():
        recorded.clear()
        upscale_module.randn_tensor = recording
        try:
            with torch.no_grad():
                latents = pipe(image=lowres.clone(), prompt_embeds=emb_dog,
                               negative_prompt_embeds=emb_empty, num_inference_steps=STEPS,
                               guidance_scale=GUIDANCE, noise_level=NOISE_LEVEL, eta=0.0,
                               generator=torch.Generator("cpu").manual_seed(SEED),
                               output_type="latent", return_dict=False)[0]
        finally:
            upscale_module.randn_tensor = original
        return latents

    latents = finite(once, "the pipeline's final latents")
    aug, lat = draws(SEED)
    if len(recorded) != 2 or not (torch.equal(recorded[0], aug) and torch.equal(recorded[1], lat)):
        raise SystemExit(f"error: the pipeline drew {[tuple(r.shape) for r in recorded]}, not "
                         "randn(picture) then randn(latents) from the seed")
    return latents, pipe.scheduler.timesteps.clone(), aug, lat


def view(name, x):
    """identity, or rot180: flip of H and W on all channels (its own inverse)."""
    return x if name == "identity" else torch.flip(x, dims=[2, 3])


def rectification_scale(eps, weights):
    """MultiTaskCombiner::rectification_scale: rho = flat flat^T / numel;
    1 / sqrt(sum w^2 + 2 w^T triu(rho, 1) w)."""
    n = eps.shape[0]
    flat = eps.reshape(n, -1)
    rho = flat.matmul(flat.t()) / float(flat.shape[1])
    variance = weights.pow(2).sum() + 2 * weights.matmul(rho.triu(1).matmul(weights))
    return variance.rsqrt()


def run_multiview(parts, lowres, tasks, emb_empty, rectify):
    """The program's stage III loop for tasks [(view, text embedding)], equal weights; returns
    the final latents, each step's combined eps and rectification scale."""
    unet = parts["unet"]
    low = DDPMScheduler(**LOW_RES_SCHEDULER_X4)
    ddim = DDIMScheduler(**SCHEDULER_X4)
    ddim.set_timesteps(STEPS)
    aug, latents = draws(SEED)
    lowres_noised = low.add_noise(lowres, aug, torch.tensor([NOISE_LEVEL]))
    n = len(tasks)
    views = [v for v, _ in tasks]
    text = torch.cat([emb_empty] * n + [e for _, e in tasks])  # unconditional half first
    labels = torch.full((2 * n,), NOISE_LEVEL, dtype=torch.long)
    weights = torch.full((n,), 1.0 / n)
    eps_steps, scales = [], []
    for t in ddim.timesteps:
        inp = torch.cat([latents, lowres_noised], 1)
        vi = torch.cat([view(v, inp) for v in views])
        with torch.no_grad():
            out = finite(lambda: unet(torch.cat([vi, vi]), t, encoder_hidden_states=text,
                                      class_labels=labels).sample, f"UNet at t={int(t)}")
        u = torch.stack([view(views[k], out[k:k + 1])[0] for k in range(n)])
        c = torch.stack([view(views[k], out[n + k:n + k + 1])[0] for k in range(n)])
        v_k = u + GUIDANCE * (c - u)
        a = ddim.alphas_cumprod[int(t)]
        eps_k = a.sqrt() * v_k + (1 - a).sqrt() * latents
        if rectify:
            scale = rectification_scale(eps_k, weights)
            eps = scale * (eps_k * weights.view(n, 1, 1, 1)).sum(0, keepdim=True)
        else:
            scale = torch.tensor(1.0)
            eps = eps_k.mean(0, keepdim=True)
        v = (eps - (1 - a).sqrt() * latents) / a.sqrt()
        latents = ddim.step(v, t, latents, eta=0.0).prev_sample
        eps_steps.append(eps)
        scales.append(scale)
    return latents, eps_steps, torch.stack(scales)


# ----------------------------------------------------------------------------- main
def main():
    torch.set_num_threads(1)
    parts, bpe, s3 = load_models()
    vae, text = parts["vae"], parts["text"]
    golden = {}

    prompts = {"dog": "dog", "cat": "cat", "empty": ""}
    emb = {}
    for key, prompt in prompts.items():
        ids, _ = bpe.tokens_and_lengths([prompt], sd_upscaler.TEXT_TOKENS)
        with torch.no_grad():
            emb[key] = finite(lambda: text(ids).last_hidden_state, f"text encoder ({prompt!r})")
        golden[f"ids_{key}"] = ids[0].clone()
        golden[f"emb_{key}"] = emb[key]
    log(f"ids_dog {golden['ids_dog'][:4].tolist()}, ids_empty {golden['ids_empty'][:3].tolist()}")

    g = torch.Generator("cpu").manual_seed(LOWRES_SEED)
    lowres = torch.rand((1, 3, LOWRES_SIZE, LOWRES_SIZE), generator=g) * 2 - 1
    assert lowres.min() < 0  # else the pipeline's preprocess would map it with 2x - 1
    golden["lowres"] = lowres
    golden["seed"] = torch.tensor(SEED, dtype=torch.long)
    golden["steps"] = torch.tensor(STEPS, dtype=torch.long)
    golden["guidance"] = torch.tensor(GUIDANCE, dtype=torch.float32)
    golden["noise_level"] = torch.tensor(NOISE_LEVEL, dtype=torch.long)
    golden["vae_scaling_factor"] = torch.tensor(float(vae.config.scaling_factor))
    config = {"seed": SEED, "steps": STEPS, "guidance": GUIDANCE, "noise_level": NOISE_LEVEL,
              "eta": 0.0, "max_noise_level": MAX_NOISE_LEVEL, "pipeline_prompt": "dog",
              "negative_prompt": "", "multiview": [["identity", "dog"], ["rot180", "cat"]],
              "scheduler": SCHEDULER_X4, "low_res_scheduler": LOW_RES_SCHEDULER_X4,
              "lowres": f"torch.Generator seeded {LOWRES_SEED}: rand(1,3,32,32) * 2 - 1",
              "tiled_latents_40": f"torch.Generator seeded {TILED40_SEED}: randn(1,4,40,40)"}
    golden["pipe_config_json"] = torch.tensor(list(json.dumps(config).encode()), dtype=torch.uint8)

    # The pipeline's preprocess of a tensor already in [-1, 1]: resized to multiples of 4
    # (bicubic interpolate to the same size) and otherwise unchanged (min < 0: no 2x - 1).
    pipe_probe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=text, tokenizer=None, unet=parts["unet"],
        low_res_scheduler=DDPMScheduler(**LOW_RES_SCHEDULER_X4),
        scheduler=DDIMScheduler(**SCHEDULER_X4))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = pipe_probe.image_processor.preprocess(lowres.clone())
    log(f"pipeline preprocess of lowres: max |change| {(pre - lowres).abs().max().item():.2e}")

    log("running StableDiffusionUpscalePipeline (identity, 'dog')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "[-1,1] tensors are deprecated"
        pipe_latents, timesteps, aug, lat = run_pipeline(parts, lowres, emb["dog"], emb["empty"])
    golden["pipe_noise_aug"] = aug
    golden["pipe_noise_latents"] = lat
    golden["pipe_lowres_noised"] = DDPMScheduler(**LOW_RES_SCHEDULER_X4).add_noise(
        lowres, aug, torch.tensor([NOISE_LEVEL]))
    golden["pipe_timesteps"] = timesteps.to(torch.long)
    golden["pipe_latents"] = pipe_latents
    golden["pipe_picture"] = finite(lambda: decode(vae, pipe_latents), "pipe_picture")
    log(f"timesteps {timesteps.tolist()}; |pipe_latents| max {pipe_latents.abs().max():.3g}")

    # The multi-view loop with one task must be the pipeline.
    one, _, _ = run_multiview(parts, lowres, [("identity", emb["dog"])], emb["empty"], False)
    d = (one - pipe_latents).abs().max().item()
    log(f"multi-view loop with N = 1 vs the pipeline: max |diff| {d:.2e}")
    if not d <= 1e-5:
        raise SystemExit("error: the multi-view reference does not reproduce the pipeline")

    tasks = [("identity", emb["dog"]), ("rot180", emb["cat"])]
    for name, rectify in (("baseline", False), ("rectified", True)):
        latents, eps_steps, scales = run_multiview(parts, lowres, tasks, emb["empty"], rectify)
        golden[f"mv_{name}_latents"] = latents
        golden[f"mv_{name}_first_eps"] = eps_steps[0]
        if rectify:
            golden["mv_rectified_first_scale"] = scales[0]
            golden["mv_rectified_scales"] = scales
        log(f"multi-view {name}: scales {[round(float(s), 5) for s in scales]}")

    vae.enable_tiling()
    tile = dict(latent=vae.tile_latent_min_size, sample=vae.tile_sample_min_size,
                factor=vae.tile_overlap_factor)
    vae.disable_tiling()
    overlap = int(tile["latent"] * (1 - tile["factor"]))
    blend = int(tile["sample"] * tile["factor"])
    golden["vae_tile_latent"] = torch.tensor(tile["latent"], dtype=torch.long)
    golden["vae_tile_sample"] = torch.tensor(tile["sample"], dtype=torch.long)
    golden["vae_tile_overlap_factor"] = torch.tensor(tile["factor"], dtype=torch.float32)
    golden["vae_tile_overlap_size"] = torch.tensor(overlap, dtype=torch.long)
    golden["vae_tile_blend_extent"] = torch.tensor(blend, dtype=torch.long)
    golden["vae_tile_row_limit"] = torch.tensor(tile["sample"] - blend, dtype=torch.long)
    log(f"tiling: tile {tile['latent']} latents / {tile['sample']} px, overlap_size {overlap}, "
        f"blend_extent {blend}, row_limit {tile['sample'] - blend}")
    tiled_32 = finite(lambda: decode(vae, pipe_latents, tiled=True), "tiled")
    z40 = torch.randn((1, 4, 40, 40), generator=torch.Generator("cpu").manual_seed(TILED40_SEED))
    golden["tiled_latents_40"] = z40
    golden["tiled_picture_40"] = finite(lambda: decode(vae, z40, tiled=True), "tiled 40")
    untiled_40 = finite(lambda: decode(vae, z40), "untiled 40")
    # Only the 40-latent tiling is kept (its last tile is 4 cells wide; the repository's size
    # budget): the untiled pictures are what the C++ test computes itself.
    log(f"tiled vs untiled: 32 latents {(tiled_32 - golden['pipe_picture']).abs().max():.3g}, "
        f"40 latents {(golden['tiled_picture_40'] - untiled_40).abs().max():.3g}")

    for name, value in golden.items():
        if value.is_floating_point():
            assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
    save_tensors(OUT, golden)
    log(f"wrote {len(golden)} tensors to {OUT} ({os.path.getsize(OUT)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

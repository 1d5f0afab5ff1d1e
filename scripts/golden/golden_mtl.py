#!/usr/bin/env python3
"""Golden run of the *method* (Xu et al., "Diffusion-based Visual Anagram as Multi-task
Learning", WACV 2025; code github Pixtella/Anagram-MTL), stage I, in Python, step by step.

Usage (from the repository root):
    .venv/bin/python scripts/golden/golden_mtl.py [--bundle models/tiny-if]
                                           [--out tests/golden/sampler_mtl.pt]

ALGORITHM.md stage I steps 1-9 with all three techniques on (noise vector balancing,
noise variance rectification, anti-segregation) and the published quirks on, on the tiny
bundle (eager diffusers UNet and transformers T5 rebuilt from the bundle, the tiny
noise-aware CLIP loaded from clip_image_encoder.pt / clip_text_encoder.pt into
scripts/anagram_py/glide_clip.py's modules: scripts/anagram_py/golden/eager.py; attention maps
from scripts/anagram_py/export/if_attention.py's CapturingAddedKVProcessor, the processor
traced into the bundle, used for every UNet pass).
A second, smaller run (prefix clean_) has the quirks off. docs/method_notes.md states what
the C++ must compute; this docstring records how the published code was read.

References are to Pixtella/Anagram-MTL at HEAD 9767fcf (file:line).

How the published code was read (every place where it and ALGORITHM.md allow two readings)
----------------------------------------------------------------------------------------
 1. Prompts. conti_runner.py:55 prepends the style: prompt = f"{style} {p}".strip(). That
    full string is used for T5, for the CLIP text and for the concept search. Here there
    is no style: the prompts are PROMPTS below. T5 states: IFPipeline.encode_prompt
    (clean_caption=False: lower().strip(), pad to 77, eos, attention mask), one call per
    prompt (conti_runner.py:56-59); the negative states are those of "" (one per prompt,
    all equal). UNet batch [v_1(x)..v_N(x), v_1(x)..v_N(x)] with text [neg x N, pos_1..pos_N]
    (samplers_mtl.py:35, 66-83).
 2. Concept tokens (samplers_mtl.py:52-62). concept = prompt.split(' ')[-1] (split on a
    single space: a trailing space gives the empty concept). concept_ids =
    tokenizer(concept).input_ids[:-1]: the IF T5Tokenizer called directly (no lower/strip
    preprocessing, no padding), end token dropped. prompt_ids = tokenizer(prompt).input_ids,
    unpadded, with its end token. Search j = 0 .. len(prompt_ids)-ln-1 (0-based) and take
    the FIRST j with prompt_ids[j:j+ln] == concept_ids (break); the range is [j, j+ln),
    half-open, an index into the 77 text keys with no offset (the padded ids used for the
    states share that prefix). No match: nothing is appended (later tasks' ranges shift:
    a bug). The C++ header says "last occurrence": for these prompts both agree (one
    occurrence), the published rule is the first.
 3. Timesteps / i. i is the 0-based enumerate index over scheduler.timesteps (DDPM,
    leading spacing). Balancing runs at every step, the last one included.
 4. Noise vector balancing (mtl.py:23-60, called at samplers_mtl.py:116).
    - CLIP images: viewed_noisy_images, i.e. X_k = v_k(x) of THIS step (the UNet's input,
      after the previous step's anti-segregation update), passed as X/2 + 0.5 (mtl.py:51);
      GLIDE's image_embeddings then feeds the encoder (input + 1) * 127.5
      (glide_text2im/clip/model_creation.py:49), so the encoder sees (X/2 + 1.5) * 127.5.
    - CLIP timestep: the current IF timestep t for every task (mtl.py:37-38).
    - CLIP text: the prompt strings through GLIDE's SimpleTokenizer encode +
      padded_tokens_and_len(77) (model_creation.py:29-46): [49406] + ids + [49407], zero
      padding, lengths passed. Recomputed every step in the published code; constant.
    - Both embeddings are already divided by (norm + 1e-12) (model_creation.py:46, 50) and
      are divided by their norm again (mtl.py:40): s = cos matrix (N, N), rows images,
      columns texts; s_k = its diagonal (mtl.py:55).
    - alpha = np.power(s, -1 - step/30) with s a float32 ndarray and the exponent a Python
      float: the power is computed in float32 (NumPy 1.x value-based casting; NumPy 2 /
      NEP 50 gives float32 too) (mtl.py:56). step = i (0-based), divisor 30 whatever the
      step count (quirk). Then torch.tensor(alpha).to(noise dtype), divided by its sum
      (mtl.py:57-58). This script calls np.power on float32 exactly so.
    - No clamp in the published code: s_k < 0 gives NaN, s_k = 0 gives inf. Here (as in
      the C++ MtlOptions::min_score) s is clamped to >= MIN_SCORE before the power; the
      number of clamped scores is recorded: none in the published-quirk run (input
      X/2 + 0.5), all in the clean run (input X: the tiny CLIP's cosines are negative).
 5. Noise variance rectification (mtl.py:62-74, samplers_mtl.py:117-126). Order:
    balancing first, then rectification with the NORMALISED balanced alpha. rho_kl =
    mean over the 3*64*64 elements of eps_k * eps_l, where eps_k is the guided noise of
    task k after the inverse view (CFG already applied), taken as a Python float (.item());
    de accumulates alpha_k^2 and 2 rho_kl alpha_k alpha_l (k < l, loops k ascending, l
    ascending) in float32 0-d tensors; c = 1 / de ** 0.5. No guard: de <= 0 gives NaN
    (possible in principle, since the diagonal uses 1, not mean(eps_k^2)). c multiplies the
    eps weights only: w_k = alpha_k * c, eps = sum_k w_k eps_k, var = sum_k alpha_k var_k.
 6. DDPM step: scheduler.step([eps, var], t, x, generator) (samplers_mtl.py:132-134).
    Randomness: the initial noise, then each step's noise (none at the last step), from
    one CPU generator; CLIP and anti-segregation draw nothing.
 7. Anti-segregation (samplers_mtl.py:136-168) runs when i <= 25, hard-coded: steps
    0..25 of 30 (26 steps), NOT scaled with the step count. It uses timesteps[i + 1], so
    the published code raises IndexError at the last step whenever num_steps <= 26: K must
    be <= num_steps - 1. Here K = ANTISEG_STEPS (4 of 6, steps i = 0..3, as the brief
    fixes; note the C++ default lround(26 * 6 / 30) = 5, so a test must pass K).
    - The variable is x AFTER this step's DDPM update, detached and made a leaf
      (lines 137-138); torch.optim.SGD([x], lr=5) (no momentum/decay), one step:
      x <- x - 5 * dloss/dx (lines 140-166). The result is the next step's x (and what the
      next step's CLIP sees).
    - The UNet gets the FULL 2N batch [v(x) x2] with [neg x N, pos] states at the NEXT
      timestep timesteps[i+1] (lines 149-161); its output is discarded. Only the
      conditional half's probabilities are kept: AttentionControl.__call__ stores
      attn[h // 2:] with h = attn.shape[0] = 2N (attn_utils.py:46-53). The unconditional
      half cannot reach the loss (no cross-batch op in the UNet); this script checks that
      running only the N conditional entries gives the same gradient (to float rounding)
      and records the difference.
    - Probabilities: softmax(q k^T / sqrt(head_dim)) over keys [77 text keys, then the
      Q image keys] (attn_utils.py:142-157, 185-196), no mask, shape (B, heads, Q, 77+Q);
      the published processor replaces every Attention's forward in down/up/mid for every
      pass (attn_utils.py:267-286, registered in conti_runner.py:34-35); numerically the
      same as diffusers' AttnAddedKVProcessor.
    - aggregate_viewed_attention(ctrl, 32, ['down', 'up'], views, concept_idxs)
      (samplers_mtl.py:163; attn_utils.py:290-309): layers of the last forward pass in
      down then up order (the MID block is NOT included; in IF and in the tiny model it is
      below 32x32 anyway) whose query count is 32*32; sum over heads; view as
      (N, 32, 32, 77 + 1024) (row-major: query q -> (q // 32, q % 32)); sum columns
      [j, j+ln) -> (N, 32, 32); each map through views[k].inverse_view as a (1, 32, 32)
      tensor; sum over layers -> M (N, 32, 32). No normalisation, no smoothing: raw
      probabilities summed over heads and concept tokens.
    - inverse_view on the 32x32 map: rotations use TF.rotate(NEAREST) == torch.rot90
      (checked below on every map via anagram_py.golden.views.torchvision_rotate_nearest);
      flip is torch.flip on dim 1 of (1,32,32) = rows; NegateView.inverse_view negates
      entries [:3] of dim 0 = the whole (1,32,32) map, so a negate task's map is NEGATED
      (view_negate.py:15-22; quirk); skew rolls columns with the same factor on the 32 grid;
      patch_permute(n) permutes n x n patches of 32/n pixels; PermuteView-based views
      (jigsaw, inner_circle, square_hinge) have no 32x32 permutation and fail
      (view_permute.py:95-97).
    - Loss (sepen.py:3-16): sum over pairs k < l of
      | 0.5 - (N-1) * 0.05 - sum(min(M_k, M_l)) / sum(M_k + M_l) |, divided by N(N-1)/2.
 8. Precision: the published pipeline runs IF in float16 (conti_runner.py:28-31) and the
    CLIP in float32 on 'cuda' (mtl.py:30-34); this golden is float32 on the CPU, one thread.

Tensors in the file (float32 unless noted; S = NUM_STEPS = 6, N = 2 tasks, K = 4,
D = T5 width 32, E = CLIP width 16):
  settings: guidance, learning_rate, overlap_target, exponent_divisor (30), min_score
    (0-d float32); num_steps, antiseg_steps, seed, map_resolution (0-d int64);
    prompts_utf8, negative_prompt_utf8, views_utf8 (uint8, joined by "\\n")
  text: prompt_ids, prompt_mask (N,77) int64; negative_ids, negative_mask (1,77) int64;
    prompt_embeds (N,77,D); negative_embeds (1,77,D);
    concept_ranges (N,2) int64 [start, end) into the 77 text keys;
    concept_ids_<k> (len,) int64 the concept's T5 ids; concept_mask (N,77) 1 on the range;
    clip_tokens (N,77) int64, clip_lengths (N,) int64; clip_text_emb (N,E) unit rows
  per step i = 0..S-1:
    timesteps (S,) int64; initial_noise (1,3,64,64); step_noise (S,1,3,64,64) (zeros at
    the last step); x_before (S,1,3,64,64) the x the step starts from;
    clip_sim (S,N,N) cosines (rows images X_k/2+0.5 at t, cols prompts); scores (S,N) its
    diagonal s_k; scores_clamped (S,) int64 how many s_k < min_score;
    exponents (S,) -(1 + i/30); weights_unnormalised (S,N) s^exponent (float32 numpy
    power); weights (S,N) alpha_k (sum 1); rho (S,N,N) mean(eps_k eps_l) (diagonal:
    mean(eps_k^2), informational, unused); rect_scale (S,) c;
    model_outputs (S,1,6,64,64) [eps = sum alpha_k c eps_k, var = sum alpha_k var_k];
    x_after_step (S,1,3,64,64) x after the DDPM step (before anti-segregation)
  anti-segregation steps j = 0..K-1 (after step j):
    antiseg_timesteps (K,) int64 = timesteps[j+1] (the UNet's timestep);
    antiseg_layer_maps_step0 (L,N,32,32) step 0's per-layer concept maps BEFORE the view
      is undone (L = 3 layers, down then up order);
    antiseg_maps (K,N,32,32) M_k (views undone, summed over layers);
    antiseg_overlap (K,) sum(min(M_0,M_1))/sum(M_0+M_1) (N = 2: the single pair);
    antiseg_loss (K,); antiseg_grad (K,1,3,64,64) dloss/dx; antiseg_x (K,1,3,64,64)
    x - lr * grad (= x_before[j+1]); antiseg_grad_condonly_maxdiff (K,) max |grad(full 2N
    batch) - grad(N conditional entries only)|
  result (1,3,64,64): x after the last step
  clean run (quirks off: exponent -(1 + i/clean_num_steps), CLIP input X itself), a full
  run of clean_num_steps = 2 steps with anti-segregation after step 0 only
  (clean_antiseg_steps = 1), same prompts, views, seed, guidance, lr, target:
    clean_num_steps, clean_antiseg_steps (int64), clean_exponent_divisor (0-d, = 2);
    clean_timesteps (2,) int64; clean_scores, clean_weights (2,N); clean_scores_clamped
    (2,) int64; clean_exponents, clean_rect_scale (2,); clean_rho (2,N,N);
    clean_antiseg_loss (1,); clean_x_after_step (2,1,3,64,64); clean_result (1,3,64,64).
    With input X the tiny CLIP's cosines are all negative, so every clean score is
    clamped to min_score and clean_weights are 1/N: this record checks the clamp path,
    the clean CLIP input and rectification, not the clean exponent. Hence also
    clean_exponent_weights (S,N): the published run's `scores` clamped and raised to
    -(1 + i/S) with S = 6 (float32 numpy power), normalised; used by neither run.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

from anagram_py.export.if_attention import find_attention_layers, install_capture
from anagram_py.export.if_common import TEXT_TOKENS
from anagram_py.golden.eager import encode, load_bundle, load_clip
from anagram_py.golden.views import inverse_view, torchvision_rotate_nearest, view
from anagram_py.golden_io import save_tensors, utf8

# ---------------------------------------------------------------------------------------
# Parameters of the golden run (also stored in the file).
BUNDLE = "models/tiny-if"
PROMPTS = ["a photo of a dog", "a photo of a cat"]
NEGATIVE_PROMPT = ""
VIEWS = ["identity", "rotate_180"]
GUIDANCE = 10.0
NUM_STEPS = 6
ANTISEG_STEPS = 4           # K: anti-segregation after steps i = 0..K-1 (0-based)
LEARNING_RATE = 5.0
SEED = 0
EXPONENT_DIVISOR = 30.0     # published quirk: -(1 + i/30) whatever the step count
MIN_SCORE = 1e-4            # clamp before the power (the published code has none)
MAP_RESOLUTION = 32
CLEAN_NUM_STEPS = 2
CLEAN_ANTISEG_STEPS = 1


def overlap_target(n):
    return 0.5 - 0.05 * (n - 1)


# ---------------------------------------------------------------------------------------
# Views on attention maps.

def inverse_view_map(name, m):
    """Published inverse_view applied to a (1, R, R) map; only the views of this run."""
    out = inverse_view(name, m)
    if name == "rotate_180":  # published: TF.rotate(map, -180, NEAREST)
        ref = torchvision_rotate_nearest(m.detach(), -180)
        assert torch.equal(ref, out.detach()), "rot90 differs from TF.rotate on a map"
    return out


def concept_range(tokenizer, prompt):
    """samplers_mtl.py:52-62: first contiguous match of the last word's ids (no eos)."""
    concept = prompt.split(" ")[-1]
    concept_ids = tokenizer(concept).input_ids[:-1]
    prompt_ids = tokenizer(prompt).input_ids
    ln = len(concept_ids)
    for j in range(len(prompt_ids) - ln):
        if prompt_ids[j:j + ln] == concept_ids:
            return concept_ids, (j, j + ln)
    raise SystemExit(f"concept {concept!r} not found in the tokens of {prompt!r}")


def concept_maps(layer_maps, ranges, views):
    """layer_maps: list of (N, Q, 77) conditional probabilities (heads summed).

    Returns (per-layer maps before the inverse view (L,N,R,R), M (N,R,R))."""
    r = MAP_RESOLUTION
    per_layer, inverted = [], []
    for probs in layer_maps:
        grid = probs.reshape(probs.shape[0], r, r, probs.shape[-1])
        maps = torch.stack([grid[k, :, :, a:b].sum(-1) for k, (a, b) in enumerate(ranges)])
        per_layer.append(maps)
        inverted.append(torch.stack([inverse_view_map(v, maps[k:k + 1])[0]
                                     for k, v in enumerate(views)]))
    return torch.stack(per_layer), torch.stack(inverted).sum(0)


def overlap_loss(maps, target):
    """sepen.py anti_seg_loss, with the pairwise overlaps also returned."""
    n = maps.shape[0]
    flat = maps.reshape(n, -1)
    loss, overlaps = 0, []
    for k in range(n):
        for l in range(k + 1, n):
            ov = torch.minimum(flat[k], flat[l]).sum() / (flat[k] + flat[l]).sum()
            overlaps.append(ov)
            loss = loss + (target - ov).abs()
    return loss / (n * (n - 1) / 2), torch.stack(overlaps)


# ---------------------------------------------------------------------------------------

def run(models, num_steps, antiseg_steps, exponent_divisor, clip_quirk, record_all):
    unet, capture, scheduler, text, ranges, clip_img, clip_text_emb = models
    n = len(VIEWS)
    target = overlap_target(n)
    scheduler.set_timesteps(num_steps)
    timesteps = scheduler.timesteps
    assert antiseg_steps <= num_steps - 1, "anti-segregation needs timesteps[i + 1]"
    generator = torch.Generator("cpu").manual_seed(SEED)
    x = torch.randn((1, 3, 64, 64), generator=generator, dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    rec = {k: [] for k in ["x_before", "clip_sim", "scores", "scores_clamped", "exponents",
                           "weights_unnormalised", "weights", "rho", "rect_scale",
                           "model_outputs", "step_noise", "x_after_step", "antiseg_timesteps",
                           "antiseg_maps", "antiseg_overlap", "antiseg_loss", "antiseg_grad",
                           "antiseg_x", "antiseg_grad_condonly_maxdiff"]}
    rec["initial_noise"] = x.clone()
    for i, t in enumerate(timesteps):
        rec["x_before"].append(x.clone())
        with torch.no_grad():
            # 1-4: views, CFG batch, inverse views, guidance.
            viewed = torch.cat([view(v, x) for v in VIEWS])
            raw = unet(scheduler.scale_model_input(torch.cat([viewed, viewed]), t), t,
                       encoder_hidden_states=text).sample
            eps_k, var_k = [], []
            for k, v in enumerate(VIEWS):
                u, c = inverse_view(v, raw[k]), inverse_view(v, raw[n + k])
                eps_k.append(u[:3] + GUIDANCE * (c[:3] - u[:3]))
                var_k.append(c[3:])
            eps_k, var_k = torch.stack(eps_k), torch.stack(var_k)  # (N,3,64,64)

            # 5: noise vector balancing.
            clip_in = viewed / 2.0 + 0.5 if clip_quirk else viewed
            zi = clip_img(clip_in, torch.full((n,), int(t), dtype=torch.long))
            sim = (zi / zi.norm(dim=-1, keepdim=True)) @ \
                (clip_text_emb / clip_text_emb.norm(dim=-1, keepdim=True)).T
            s = sim.diagonal().clone()
            clamped = int((s < MIN_SCORE).sum())
            exponent = -1 - i / exponent_divisor
            raw_alpha = torch.from_numpy(np.power(s.clamp_min(MIN_SCORE).numpy(), exponent))
            assert raw_alpha.dtype == torch.float32
            alpha = raw_alpha / raw_alpha.sum()

            # 6: noise variance rectification (float32 0-d accumulation, as published).
            rho = torch.empty(n, n)
            de = torch.tensor(0.0)
            for k in range(n):
                de = de + alpha[k] ** 2
                rho[k, k] = (eps_k[k] * eps_k[k]).mean()
                for l in range(k + 1, n):
                    r = (eps_k[k] * eps_k[l]).mean().item()
                    rho[k, l] = rho[l, k] = r
                    de = de + 2 * r * alpha[k] * alpha[l]
            c_scale = 1 / de ** 0.5

            # 7-8: combine, DDPM step.
            w = alpha * c_scale
            eps = (eps_k * w.view(n, 1, 1, 1)).sum(0, keepdim=True)
            var = (var_k * alpha.view(n, 1, 1, 1)).sum(0, keepdim=True)
            model_output = torch.cat([eps, var], 1)
            peek = torch.Generator("cpu")
            peek.set_state(generator.get_state())
            noise = torch.randn(x.shape, generator=peek) if i < num_steps - 1 \
                else torch.zeros_like(x)
            x = scheduler.step(model_output, t, x, generator=generator).prev_sample
            assert torch.equal(peek.get_state(), generator.get_state()), "noise draw mismatch"

        for key, value in (("clip_sim", sim), ("scores", s), ("scores_clamped", clamped),
                           ("exponents", exponent), ("weights_unnormalised", raw_alpha),
                           ("weights", alpha), ("rho", rho), ("rect_scale", c_scale),
                           ("model_outputs", model_output), ("step_noise", noise),
                           ("x_after_step", x.clone())):
            rec[key].append(value)
        line = (f"step {i} t={int(t)}: s {[round(v, 5) for v in s.tolist()]} "
                f"alpha {[round(v, 5) for v in alpha.tolist()]} c {float(c_scale):.5f}")

        # 9: anti-segregation.
        if i < antiseg_steps:
            t_next = timesteps[i + 1]
            grads = []
            for batch in ("full", "cond"):
                xg = x.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    viewed = torch.cat([view(v, xg) for v in VIEWS])
                    inp, states = (torch.cat([viewed, viewed]), text) if batch == "full" \
                        else (viewed, text[n:])
                    capture.start()
                    try:
                        unet(scheduler.scale_model_input(inp, t_next), t_next,
                             encoder_hidden_states=states)
                    finally:
                        probs = capture.stop()
                    probs = [p[-n:] for p in probs]  # conditional entries (attn[h // 2:])
                    per_layer, maps = concept_maps(probs, ranges, VIEWS)
                    loss, overlaps = overlap_loss(maps, target)
                    if batch == "full":
                        opt = torch.optim.SGD([xg], lr=LEARNING_RATE)
                        opt.zero_grad()
                        loss.backward()
                        grads.append(xg.grad.detach().clone())
                        opt.step()
                        x_new = xg.detach().clone()
                        full = (per_layer.detach(), maps.detach(), loss.detach(), overlaps.detach())
                    else:
                        grads.append(torch.autograd.grad(loss, xg)[0])
            per_layer, maps, loss, overlaps = full
            condonly = (grads[0] - grads[1]).abs().max()
            assert condonly <= 1e-5 * max(grads[0].abs().max().item(), 1e-30) + 1e-12, \
                f"the unconditional half changed the gradient by {condonly}"
            if i == 0:
                rec["antiseg_layer_maps_step0"] = per_layer
            for key, value in (("antiseg_timesteps", t_next), ("antiseg_maps", maps),
                               ("antiseg_overlap", overlaps), ("antiseg_loss", loss),
                               ("antiseg_grad", grads[0]), ("antiseg_x", x_new),
                               ("antiseg_grad_condonly_maxdiff", condonly)):
                rec[key].append(value)
            x = x_new
            line += (f" | antiseg t'={int(t_next)} overlap {overlaps.tolist()[0]:.5f} "
                     f"loss {float(loss):.6f} |grad| {grads[0].abs().max():.3e} "
                     f"(cond-only diff {condonly:.1e})")
        print(line, flush=True)

    out = {"timesteps": timesteps.to(torch.int64), "result": x.detach().clone()}
    for key, values in rec.items():
        if not isinstance(values, list):
            out[key] = values
        elif values:
            if isinstance(values[0], int):
                out[key] = torch.tensor(values, dtype=torch.int64)
            elif isinstance(values[0], float):
                out[key] = torch.tensor(values, dtype=torch.float32)
            else:
                out[key] = torch.stack([torch.as_tensor(v) for v in values])
    if "antiseg_timesteps" in out:
        out["antiseg_timesteps"] = out["antiseg_timesteps"].to(torch.int64)
    if not record_all:
        keep = ["timesteps", "scores", "scores_clamped", "weights", "exponents", "rect_scale", "rho",
                "antiseg_loss", "x_after_step", "result"]
        out = {k: out[k] for k in keep}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=BUNDLE)
    parser.add_argument("--out", default="tests/golden/sampler_mtl.pt")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # deterministic reductions
    started = time.time()
    n = len(VIEWS)
    assert len(PROMPTS) == n

    unet, text_encoder, t5_tokenizer, scheduler = load_bundle(args.bundle)
    unet.requires_grad_(False)
    layers, _ = find_attention_layers(unet, MAP_RESOLUTION, text_encoder.config.d_model)
    capture = install_capture(unet, layers)
    print(f"{MAP_RESOLUTION}x{MAP_RESOLUTION} attention layers: {layers}")

    with torch.no_grad():
        prompt_ids, prompt_mask, prompt_embeds = encode(PROMPTS, t5_tokenizer, text_encoder)
        neg_ids, neg_mask, negative_embeds = encode([NEGATIVE_PROMPT], t5_tokenizer, text_encoder)
    text = torch.cat([negative_embeds.expand(n, -1, -1), prompt_embeds])

    concept_ids, ranges = zip(*(concept_range(t5_tokenizer, p) for p in PROMPTS))
    mask = torch.zeros(n, TEXT_TOKENS)
    for k, (a, b) in enumerate(ranges):
        assert prompt_ids[k, a:b].tolist() == concept_ids[k]
        mask[k, a:b] = 1

    (clip_img, clip_img_ts), (clip_txt, clip_txt_ts), bpe = load_clip(args.bundle)
    clip_tokens, clip_lengths = bpe.tokens_and_lengths(PROMPTS, 77)
    with torch.no_grad():
        clip_text_emb = clip_txt(clip_tokens, clip_lengths)
        assert torch.allclose(clip_text_emb, clip_txt_ts(clip_tokens, clip_lengths), atol=1e-6)
        probe = torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        tt = torch.tensor([500, 17])
        assert torch.allclose(clip_img(probe, tt), clip_img_ts(probe, tt), atol=1e-6)

    models = (unet, capture, scheduler, text, ranges, clip_img, clip_text_emb)
    print(f"published run: {NUM_STEPS} steps, anti-segregation after steps 0..{ANTISEG_STEPS - 1}")
    main_run = run(models, NUM_STEPS, ANTISEG_STEPS, EXPONENT_DIVISOR, True, True)
    print(f"clean run: {CLEAN_NUM_STEPS} steps, exponent -(1 + i/{CLEAN_NUM_STEPS}), "
          f"CLIP input X, anti-segregation after step 0")
    clean = run(models, CLEAN_NUM_STEPS, CLEAN_ANTISEG_STEPS, float(CLEAN_NUM_STEPS), False, False)

    f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    i64 = lambda v: torch.tensor(v, dtype=torch.int64)  # noqa: E731
    tensors = {
        "guidance": f32(GUIDANCE), "learning_rate": f32(LEARNING_RATE),
        "overlap_target": f32(overlap_target(n)), "exponent_divisor": f32(EXPONENT_DIVISOR),
        "min_score": f32(MIN_SCORE),
        "num_steps": i64(NUM_STEPS), "antiseg_steps": i64(ANTISEG_STEPS), "seed": i64(SEED),
        "map_resolution": i64(MAP_RESOLUTION),
        "prompts_utf8": utf8("\n".join(PROMPTS)),
        "negative_prompt_utf8": utf8(NEGATIVE_PROMPT),
        "views_utf8": utf8("\n".join(VIEWS)),
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "negative_ids": neg_ids, "negative_mask": neg_mask,
        "prompt_embeds": prompt_embeds, "negative_embeds": negative_embeds,
        "concept_ranges": i64([list(r) for r in ranges]), "concept_mask": mask,
        "clip_tokens": clip_tokens, "clip_lengths": clip_lengths, "clip_text_emb": clip_text_emb,
        "clean_num_steps": i64(CLEAN_NUM_STEPS), "clean_antiseg_steps": i64(CLEAN_ANTISEG_STEPS),
        "clean_exponent_divisor": f32(float(CLEAN_NUM_STEPS)),
    }
    # The clean exponent on the published run's scores (not used by either run): the
    # clean run's own scores are all clamped, so its weights alone cannot show the exponent.
    s = main_run["scores"].clamp_min(MIN_SCORE)
    e = [-1 - i / NUM_STEPS for i in range(NUM_STEPS)]
    a = torch.stack([torch.from_numpy(np.power(s[i].numpy(), e[i])) for i in range(NUM_STEPS)])
    tensors["clean_exponent_weights"] = a / a.sum(1, keepdim=True)
    for k, ids in enumerate(concept_ids):
        tensors[f"concept_ids_{k}"] = i64(ids)
    tensors.update(main_run)
    tensors.update({f"clean_{k}": v for k, v in clean.items()})
    for name, value in tensors.items():
        assert value.dtype != torch.float64, name
        if value.is_floating_point():
            assert torch.isfinite(value).all(), name
    save_tensors(args.out, tensors)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB) in {time.time() - started:.1f} s:")
    for k, v in tensors.items():
        print(f"  {k} {str(v.dtype).replace('torch.', '')}{tuple(v.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

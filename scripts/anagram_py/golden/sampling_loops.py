"""The sampling loops of the stage II golden run (scripts/golden/golden_stage2.py), also replayed
with a bundle's traced files by scripts/tools/check_bundle.py --golden-stage2: stage I with the
baseline combiner, stage II with the method's (noise vector balancing, variance rectification),
following Pixtella/Anagram-MTL. The settings below are the golden run's (stored in its file)."""
import numpy as np
import torch
import torch.nn.functional as F

from .views import inverse_view, torchvision_rotate_nearest, view

GUIDANCE = 10.0
EXPONENT_DIVISOR = 30.0     # published quirk: -(1 + i/30) whatever the step count
MIN_SCORE = 1e-4            # clamp before the power (the published code has none)
CLIP_SIZE = 64


def inverse_view_checked(name, x):
    """inverse_view, checked against the published TF.rotate(x, -180, NEAREST) on (6, H, W)."""
    out = inverse_view(name, x)
    if name == "rotate_180":
        assert torch.equal(torchvision_rotate_nearest(x, -180), out)
    return out


def resize_like_torchvision(images, size):
    """transforms.Resize((size, size)) of torchvision 0.16 on float tensors: bilinear,
    align_corners=False, no antialiasing."""
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=False)


def peek_noise(generator, shape):
    """The noise the next randn(shape, generator) will draw, from a copy of the state."""
    peek = torch.Generator("cpu")
    peek.set_state(generator.get_state())
    return torch.randn(shape, generator=peek, dtype=torch.float32)


# ---------------------------------------------------------------------------------------

def stage1_baseline(unet, scheduler, text, generator, views, num_steps):
    """The baseline stage I loop of scripts/golden/golden_sampler.py (mean combiner); returns
    (x, records)."""
    n = len(views)
    scheduler.set_timesteps(num_steps)
    x = torch.randn((1, 3, 64, 64), generator=generator, dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    rec = {"stage1_timesteps": scheduler.timesteps.to(torch.int64),
           "stage1_initial_noise": x.clone(), "stage1_step_noise": [], "stage1_x_steps": []}
    for i, t in enumerate(scheduler.timesteps):
        viewed = torch.cat([view(v, x) for v in views])
        raw = unet(scheduler.scale_model_input(torch.cat([viewed, viewed]), t), t,
                   encoder_hidden_states=text).sample
        eps, var = [], []
        for k, v in enumerate(views):
            u, c = inverse_view(v, raw[k:k + 1]), inverse_view(v, raw[n + k:n + k + 1])
            eps.append(u[:, :3] + GUIDANCE * (c[:, :3] - u[:, :3]))
            var.append(c[:, 3:])
        model_output = torch.cat([torch.stack(eps).mean(0), torch.stack(var).mean(0)], 1)
        noise = peek_noise(generator, x.shape) if i < num_steps - 1 else torch.zeros_like(x)
        x = scheduler.step(model_output, t, x, generator=generator).prev_sample
        rec["stage1_step_noise"].append(noise)
        rec["stage1_x_steps"].append(x.clone())
        print(f"stage I step {i} t={int(t)}: x [{x.min():.3f}, {x.max():.3f}]")
    rec["stage1_step_noise"] = torch.stack(rec["stage1_step_noise"])
    rec["stage1_x_steps"] = torch.stack(rec["stage1_x_steps"])
    rec["stage1_result"] = x.clone()
    return x, rec


def stage2_method(models, stage1_result, text, generator, views, num_steps, noise_level,
                  balance=True, rectify=True, record=True):
    """Stage II with the method's combiner (scripts/golden/golden_stage2.py's docstring).
    Returns (x, records)."""
    unet2, scheduler2, noising2, clip_img, clip_text_emb = models
    n = len(views)
    size = unet2.config.sample_size
    scheduler2.set_timesteps(num_steps)
    timesteps = scheduler2.timesteps
    rec = {k: [] for k in ["clip_sim", "scores", "scores_clamped", "exponents",
                           "weights_unnormalised", "weights", "rho", "rect_scale",
                           "model_outputs", "step_noise", "x_steps"]}
    rec["stage2_timesteps"] = timesteps.to(torch.int64)

    # Initial noise (IFSuperResolutionPipeline.prepare_intermediate_images), then the
    # augmentation of the upscaled stage I picture.
    x = torch.randn((1, 3, size, size), generator=generator, dtype=torch.float32)
    x = x * scheduler2.init_noise_sigma
    rec["stage2_initial_noise"] = x.clone()
    upscaled = F.interpolate(stage1_result, (size, size), mode="bilinear", align_corners=True)
    level = torch.tensor([noise_level] * upscaled.shape[0])
    aug = torch.randn(upscaled.shape, generator=generator, dtype=upscaled.dtype)
    lowres = noising2.add_noise(upscaled, aug, timesteps=level)
    class_labels = torch.cat([level] * n * 2)
    rec.update(aug_noise=aug, upscaled=upscaled, lowres=lowres, class_labels=class_labels)

    for i, t in enumerate(timesteps):
        model_input = torch.cat([x, lowres], dim=1)
        viewed = torch.stack([view(v, model_input[0]) for v in views])   # (N, 6, S, S)
        batch = scheduler2.scale_model_input(torch.cat([viewed, viewed]), t)
        raw = unet2(batch, t, encoder_hidden_states=text, class_labels=class_labels).sample
        if i == 0:
            rec["unet_input_step0"], rec["unet_output_step0"] = viewed.clone(), raw.clone()
        eps_k, var_k = [], []
        for k, v in enumerate(views):
            u, c = inverse_view_checked(v, raw[k]), inverse_view_checked(v, raw[n + k])
            eps_k.append(u[:3] + GUIDANCE * (c[:3] - u[:3]))
            var_k.append(c[3:])
        eps_k, var_k = torch.stack(eps_k), torch.stack(var_k)            # (N, 3, S, S)

        # Noise vector balancing (mtl.py:44-60, stage 2).
        clip_in = resize_like_torchvision(viewed[:, :3] / 2.0 + 0.5, CLIP_SIZE)
        if i == 0:
            rec["clip_images_step0"] = clip_in.clone()
        zi = clip_img(clip_in, torch.tensor([int(t)] * n, dtype=torch.long))
        sim = (zi / zi.norm(dim=-1, keepdim=True)) @ \
            (clip_text_emb / clip_text_emb.norm(dim=-1, keepdim=True)).T
        s = sim.diagonal().clone()
        clamped = int((s < MIN_SCORE).sum())
        exponent = -1 - i / EXPONENT_DIVISOR
        raw_alpha = torch.from_numpy(np.power(s.clamp_min(MIN_SCORE).numpy(), exponent))
        assert raw_alpha.dtype == torch.float32
        alpha = raw_alpha / raw_alpha.sum() if balance else torch.full((n,), 1.0 / n)

        # Noise variance rectification (mtl.py:62-74; float32 0-d accumulation).
        rho = torch.empty(n, n)
        de = torch.tensor(0.0)
        for k in range(n):
            de = de + alpha[k] ** 2
            rho[k, k] = (eps_k[k] * eps_k[k]).mean()
            for m in range(k + 1, n):
                r = (eps_k[k] * eps_k[m]).mean().item()
                rho[k, m] = rho[m, k] = r
                de = de + 2 * r * alpha[k] * alpha[m]
        c_scale = 1 / de ** 0.5 if rectify else torch.tensor(1.0)

        w = alpha * c_scale
        eps = (eps_k * w.view(n, 1, 1, 1)).sum(0, keepdim=True)
        var = (var_k * alpha.view(n, 1, 1, 1)).sum(0, keepdim=True)
        model_output = torch.cat([eps, var], 1)
        noise = peek_noise(generator, x.shape) if i < num_steps - 1 else torch.zeros_like(x)
        x = scheduler2.step(model_output, t, x, generator=generator).prev_sample
        for key, value in (("clip_sim", sim), ("scores", s), ("scores_clamped", clamped),
                           ("exponents", exponent), ("weights_unnormalised", raw_alpha),
                           ("weights", alpha), ("rho", rho), ("rect_scale", c_scale),
                           ("model_outputs", model_output), ("step_noise", noise),
                           ("x_steps", x.clone())):
            rec[key].append(value)
        print(f"stage II step {i} t={int(t)}: s {[round(v, 5) for v in s.tolist()]} alpha "
              f"{[round(v, 5) for v in alpha.tolist()]} c {float(c_scale):.5f} "
              f"x [{x.min():.3f}, {x.max():.3f}]", flush=True)

    out = {}
    for key, values in rec.items():
        if not isinstance(values, list):
            out[key] = values
        elif isinstance(values[0], int):
            out[key] = torch.tensor(values, dtype=torch.int64)
        elif isinstance(values[0], float):
            out[key] = torch.tensor(values, dtype=torch.float32)
        else:
            out[key] = torch.stack([torch.as_tensor(v) for v in values])
    out["result"] = x.clone()
    return x, out

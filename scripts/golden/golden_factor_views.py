"""Golden tensors for tests/test_factor_views.cpp: a noise estimate through every factorized view
of Factorized Diffusion, computed the published way.

Writes tests/golden/factor_views.pt. The test estimates are normal noise from one CPU generator
seeded 0, drawn (1,3,64,64) then (1,3,256,256) (the C++ test draws them the same way; to keep
the file small they are not stored, only eps_64's first row to check the draw). It holds
  eps_64_row0      (64,) float32, eps_64[0, 0, 0]
  <key>_64         (1,3,64,64) float32, eps_64 through the view's inverse_view
  <key>_256        (1,3,8,256) float32, the top 8 rows of eps_256 through it (where the
                   reflect and zero padding reach)
where the keys are low_pass, high_pass, triple_low_pass, triple_medium_pass, triple_high_pass,
grayscale, color, motion, motion_res and scale (the views' default arguments).

The references follow visual_anagrams/views/view_hybrid.py, view_color.py, view_motion.py and
view_scale.py (github dangeng/visual_anagrams) as published: torchvision's
transforms.functional.gaussian_blur with the kernel size and sigma scaled by S // 64 (kept odd),
the channel mean, F.conv2d with eye(k) / k and zero padding, and the factor. torchvision comes
from Debian's python3-torchvision 0.14 (the version that matches Debian's torch 1.13).

Run: .venv/bin/python scripts/golden/golden_factor_views.py
"""
import os

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from anagram_py.golden_io import save_tensors
from anagram_py.paths import GOLDEN_DIR


def scaled(kernel_size, sigma, size):
    factor = size // 64
    return kernel_size * factor + ((factor + 1) % 2), sigma * factor


def low_pass(noise, sigma=2, kernel_size=33):
    k, s = scaled(kernel_size, sigma, noise.shape[-1])
    return TF.gaussian_blur(noise, k, s)


def triple(noise, band, sigma_1=1, sigma_2=2, kernel_size=25):
    factor = noise.shape[-1] // 64
    k = kernel_size * factor + ((factor + 1) % 2)
    mp = TF.gaussian_blur(noise, k, sigma_1 * factor)
    hp = noise - mp
    lp = TF.gaussian_blur(mp, k, sigma_2 * factor)
    return {"low": lp, "medium": mp - lp, "high": hp}[band]


def motion(noise, length=7):
    factor = noise.shape[-1] // 64
    size = length * factor + ((factor + 1) % 2)
    kernel = torch.eye(size)[None, None] / size
    return torch.cat([F.conv2d(noise[:, i:i + 1], kernel, padding=size // 2) for i in range(3)], 1)


def gray(noise):
    return noise.mean(1, keepdim=True).expand_as(noise).contiguous()


FILTERS = {
    "low_pass": low_pass,
    "high_pass": lambda x: x - low_pass(x),
    "triple_low_pass": lambda x: triple(x, "low"),
    "triple_medium_pass": lambda x: triple(x, "medium"),
    "triple_high_pass": lambda x: triple(x, "high"),
    "grayscale": gray,
    "color": lambda x: x - gray(x),
    "motion": motion,
    "motion_res": lambda x: x - motion(x),
    "scale": lambda x: 0.5 * x,
}


def main():
    tensors = {}
    generator = torch.Generator().manual_seed(0)
    for size in (64, 256):
        eps = torch.randn(1, 3, size, size, generator=generator)
        if size == 64:
            tensors["eps_64_row0"] = eps[0, 0, 0].clone()
        for key, f in FILTERS.items():
            out = f(eps.clone())
            tensors[f"{key}_{size}"] = out if size == 64 else out[:, :, :8].contiguous()
    path = os.path.join(GOLDEN_DIR, "factor_views.pt")
    save_tensors(path, tensors)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

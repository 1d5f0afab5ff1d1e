"""The factorized views as the evaluation of demo anagrams sees them (scripts/demo/evaluate_demo.py,
docs/factorized_views.md): what a viewer sees of a picture under a view (`render`, the
program's view_K_*.png) and the part of the picture a view's filter keeps (`component`, e.g.
the high-pass component alone), on (..., 3, S, S) tensors in [-1, 1].

The filters follow the program's (src/views/hybrid.cpp, color.cpp; Ref: visual_anagrams
views/view_hybrid.py, view_color.py): the Gaussian blur of torchvision's gaussian_blur with
kernel 33 and sigma 2 at 64x64, both scaled with the picture (kernel kept odd: 17 and sigma
1 at 32x32), reflect padding; grayscale is the channel mean in every channel."""
import math

import torch
import torch.nn.functional as F

HYBRID_SIGMA = 2.0     # at 64x64 (the program's default --view-arg)
HYBRID_KERNEL = 33     # at 64x64
# view -> (what a viewer sees, what the filter keeps); only the views the evaluation supports
FACTOR_VIEWS = ("low_pass", "high_pass", "grayscale", "color")
ALIASES = {"lowpass": "low_pass", "far": "low_pass", "highpass": "high_pass",
           "near": "high_pass", "gray": "grayscale", "grey": "grayscale",
           "greyscale": "grayscale", "colour": "color"}


def canonical(view):
    return ALIASES.get(view, view)


def is_factor(view):
    return canonical(view) in FACTOR_VIEWS


def odd_kernel_at(size_at_64, side):
    """The program's kernel size at side x side: 2 * floor(size_at_64 * side / 64 / 2) + 1."""
    return 2 * int(math.floor(size_at_64 * side / 64.0 / 2.0)) + 1


def gaussian_blur(x, kernel_size, sigma):
    """torchvision's gaussian_blur on (..., C, H, W): the normalised 1-d kernel
    exp(-0.5 (t / sigma)^2) on linspace(-(k-1)/2, (k-1)/2, k), per channel, reflect padding."""
    half = (kernel_size - 1) * 0.5
    t = torch.linspace(-half, half, kernel_size, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    shape = x.shape
    planes = x.reshape(-1, 1, shape[-2], shape[-1])
    pad = kernel_size // 2
    planes = F.pad(planes, (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(F.conv2d(planes, k.view(1, 1, -1, 1)), k.view(1, 1, 1, -1))
    return out.reshape(shape)


def low_pass(x, sigma_at_64=HYBRID_SIGMA):
    side = x.shape[-1]
    return gaussian_blur(x, odd_kernel_at(HYBRID_KERNEL, side), sigma_at_64 * side / 64.0)


def gray(x):
    return x.mean(-3, keepdim=True).expand_as(x)


def render(view, x):
    """What a viewer sees of picture x under a factorized view (the program's view picture):
    from afar the low pass, in grayscale the channel mean; up close and in colour, x itself."""
    view = canonical(view)
    if view == "low_pass":
        return low_pass(x)
    if view == "grayscale":
        return gray(x)
    if view in ("high_pass", "color"):
        return x
    raise ValueError(f"not a factorized view the evaluation knows: {view!r}")


def component(view, x):
    """The part of x the view's filter keeps (the components of a pair sum to x):
    high_pass x - low_pass(x), color x - gray(x); for low_pass and grayscale, the rendering."""
    view = canonical(view)
    if view == "high_pass":
        return x - low_pass(x)
    if view == "color":
        return x - gray(x)
    return render(view, x)


def normalise(c):
    """Each picture of c (..., 3, H, W) stretched to [-1, 1] (its minimum -1, its maximum 1,
    over all channels); a constant picture becomes 0."""
    flat = c.reshape(-1, c.shape[-3] * c.shape[-2] * c.shape[-1])
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    span = (hi - lo).clamp_min(1e-8)
    out = torch.where(hi - lo > 1e-8, (flat - lo) / span * 2 - 1, torch.zeros_like(flat))
    return out.reshape(c.shape)


def has_own_component(view):
    """True where the component alone differs from what a viewer sees (high_pass, color)."""
    return canonical(view) in ("high_pass", "color")

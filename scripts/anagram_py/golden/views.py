"""The views of the golden runs, as the published code computes them (github dangeng/
visual_anagrams: identity and rotate_180, whose rotation is torchvision's TF.rotate(NEAREST))."""
import math

import torch
import torch.nn.functional as F


def view(name, x):
    """View NAME of x (..., H, W): identity, or rotate_180 as torch.rot90."""
    if name == "identity":
        return x
    if name == "rotate_180":
        return torch.rot90(x, 2, dims=(-2, -1))
    raise ValueError(name)


def inverse_view(name, x):
    return view(name, x)  # both views are their own inverse


def torchvision_rotate_nearest(img, angle):
    """TF.rotate(img, angle, NEAREST, expand=False, center=None, fill=None) on a (C,H,W) tensor.

    `angle` in degrees, counter-clockwise on screen. TF.rotate hands -angle to its inverse
    affine matrix helper; with no shear, translation or scaling, and the centre at the image
    centre, that matrix is [cos t, sin t, 0, -sin t, cos t, 0] with t = radians(-angle).
    """
    c, h, w = img.shape
    rot = math.radians(-angle)
    # Inverse rotation matrix (torchvision _get_inverse_affine_matrix, no shear/scale/shift).
    a, b = math.cos(rot), -math.sin(rot)
    cc, d = math.sin(rot), math.cos(rot)
    matrix = [d, -b, 0.0, -cc, a, 0.0]
    theta = torch.tensor(matrix, dtype=img.dtype).reshape(1, 2, 3)
    # Pixel-centre grid around the image centre, normalised after applying theta.
    xs = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, steps=w, dtype=img.dtype)
    ys = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, steps=h, dtype=img.dtype)
    base = torch.empty(1, h, w, 3, dtype=img.dtype)
    base[..., 0] = xs
    base[..., 1] = ys.unsqueeze(-1)
    base[..., 2] = 1
    scaled = theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], dtype=img.dtype)
    grid = base.view(1, h * w, 3).bmm(scaled).view(1, h, w, 2)
    out = F.grid_sample(img[None], grid, mode="nearest", padding_mode="zeros",
                        align_corners=False)
    return out[0]

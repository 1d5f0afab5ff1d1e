"""Golden tensors for tests/test_views.cpp: a test image under every view, computed in Python.

Writes tests/golden/views_64.pt and tests/golden/views_32.pt. Each holds
  image            (3,S,S) float32 test image; channel 0 is unique per pixel, so any misplaced
                   pixel shows
  <key>            (3,S,S) float32, the image under the view named in VIEWS[key]
  splitmix_seed0   (8,) int64, the first splitmix64 outputs for seed 0 (bit patterns)
  perm10_seed42    (10,) int64, the seeded Fisher-Yates permutation of 0..9 for seed 42

The references follow the published definitions in github dangeng/visual_anagrams
(visual_anagrams/views/*.py), written independently with torch ops: torch.flip, torch.rot90,
per-column torch.roll, the per-pixel inner-circle loop, per-square rot90 of an index grid, and
patch reshapes. The published rotations use torchvision's TF.rotate(NEAREST); that code path
(affine grid + grid_sample) is re-derived in scripts/anagram_py/golden/views.py and checked
to equal torch.rot90 here.

The published patch permutation is torch.randperm (unseeded); our deterministic equivalent is a
splitmix64-driven Fisher-Yates shuffle, re-implemented here from its definition.

Run: .venv/bin/python scripts/golden/golden_views.py
"""
from pathlib import Path

import torch

from anagram_py.golden.views import torchvision_rotate_nearest
from anagram_py.golden_io import save_tensors
from anagram_py.paths import GOLDEN_DIR
from anagram_py.splitmix64 import SplitMix64


# key -> (view name, argument as given to make_view). The C++ test holds the same table.
VIEWS = {
    "identity": ("identity", ""),
    "negate": ("negate", ""),
    "flip": ("flip", ""),
    "mirror": ("mirror", ""),
    "rotate_cw": ("rotate_cw", ""),
    "rotate_ccw": ("rotate_ccw", ""),
    "rotate_180": ("rotate_180", ""),
    "skew": ("skew", ""),
    "skew_2": ("skew", "2"),
    "skew_m0p7": ("skew", "-0.7"),
    "patch_permute": ("patch_permute", ""),
    "patch_permute_4_7": ("patch_permute", "4,7"),
    "pixel_permute": ("pixel_permute", ""),
    "pixel_permute_5": ("pixel_permute", "5"),
    "inner_circle": ("inner_circle", ""),
    "square_hinge": ("square_hinge", ""),
}


# --- seeded permutation (mirrors src/views/view_util.cpp) ---------------------------------

def seeded_permutation(n, seed):
    perm = list(range(n))
    rng = SplitMix64(seed)
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def as_int64(u):
    return u - (1 << 64) if u >= (1 << 63) else u


# --- reference views on (C,S,S) -----------------------------------------------------------

def ref_skew(img, factor):
    _, h, w = img.shape
    centre = h // 2
    cols = [img[:, :, i].roll(int(factor * (i - centre)), dims=1) for i in range(w)]
    return torch.stack(cols, dim=2)


def ref_inner_circle(img):
    _, s, _ = img.shape
    r = int(s / 8 * 3)
    perm = []
    for iy in range(s):
        for ix in range(s):
            x = ix - s // 2 + 0.5
            y = iy - s // 2 + 0.5
            if x * x + y * y < r * r:
                x, y = -x, -y
            perm.append(int(x + s // 2 - 0.5) + int(y + s // 2 - 0.5) * s)
    return img.reshape(img.shape[0], -1)[:, torch.tensor(perm)].reshape(img.shape)


def ref_square_hinge(img):
    _, s, _ = img.shape
    q = s // 3
    idx = torch.arange(s * s).view(s, s)
    for i in range(3):
        for j in range(3):
            k = -1 if (i + j) % 2 == 0 else 1
            block = idx[i * q:(i + 1) * q, j * q:(j + 1) * q]
            idx[i * q:(i + 1) * q, j * q:(j + 1) * q] = torch.rot90(block.clone(), k=k)
    return img.reshape(img.shape[0], -1)[:, idx.flatten()].reshape(img.shape)


def ref_patch_permute(img, n, seed):
    c, h, w = img.shape
    ph, pw = h // n, w // n
    perm = torch.tensor(seeded_permutation(n * n, seed))
    # 'c (h p1) (w p2) -> (h w) c p1 p2', index with perm, and back.
    patches = img.reshape(c, n, ph, n, pw).permute(1, 3, 0, 2, 4).reshape(n * n, c, ph, pw)
    patches = patches[perm]
    return patches.reshape(n, n, c, ph, pw).permute(2, 0, 3, 1, 4).reshape(c, h, w)


def reference(name, arg, img):
    if name == "identity":
        return img.clone()
    if name == "negate":
        return -img
    if name == "flip":
        return torch.flip(img, [1])
    if name == "mirror":
        return torch.flip(img, [2])
    if name in ("rotate_cw", "rotate_ccw", "rotate_180"):
        k, angle = {"rotate_cw": (-1, -90), "rotate_ccw": (1, 90), "rotate_180": (2, 180)}[name]
        out = torch.rot90(img, k=k, dims=(1, 2))
        for dtype in (torch.float32, torch.float64):
            published = torchvision_rotate_nearest(img.to(dtype), angle).to(img.dtype)
            assert torch.equal(published, out), f"{name}: rot90 differs from TF.rotate"
        return out
    if name == "skew":
        return ref_skew(img, float(arg) if arg else 1.5)
    if name == "inner_circle":
        return ref_inner_circle(img)
    if name == "square_hinge":
        return ref_square_hinge(img)
    if name == "patch_permute":
        parts = arg.split(",") if arg else []
        n = int(parts[0]) if parts else 8
        seed = int(parts[1]) if len(parts) > 1 else 0
        return ref_patch_permute(img, n, seed)
    if name == "pixel_permute":
        return ref_patch_permute(img, 64, int(arg) if arg else 0)
    raise ValueError(name)


def test_image(s):
    y = torch.arange(s, dtype=torch.float64).view(s, 1).expand(s, s)
    x = torch.arange(s, dtype=torch.float64).view(1, s).expand(s, s)
    unique = (y * s + x) / (s * s)                                   # every pixel different
    gradient = (x + 2 * y) / (3 * (s - 1)) + 0.25 * (((x // 8) + (y // 8)) % 2)
    r = torch.sqrt((x - 0.3 * s) ** 2 + (y - 0.6 * s) ** 2)
    rings = 0.5 + 0.5 * torch.cos(r * 0.7) * (1 - x / s)
    img = torch.stack([unique, gradient, rings]).to(torch.float32)
    return img * 2 - 1


def main():
    golden = Path(GOLDEN_DIR)
    golden.mkdir(parents=True, exist_ok=True)
    rng = SplitMix64(0)
    splitmix = torch.tensor([as_int64(rng.next()) for _ in range(8)], dtype=torch.int64)
    perm10 = torch.tensor(seeded_permutation(10, 42), dtype=torch.int64)
    for s in (64, 32):
        img = test_image(s)
        tensors = {"image": img, "splitmix_seed0": splitmix, "perm10_seed42": perm10}
        for key, (name, arg) in VIEWS.items():
            if name == "pixel_permute" and s % 64 != 0:
                continue  # defined on multiples of its 64x64 grid only
            out = reference(name, arg, img)
            assert out.shape == img.shape
            # A signed permutation: same values up to sign.
            sign = -1 if name == "negate" else 1
            assert torch.equal((out * sign).flatten().sort().values, img.flatten().sort().values)
            tensors[key] = out
        path = golden / f"views_{s}.pt"
        save_tensors(path, tensors)
        print(f"wrote {path} ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()

"""How closely two evaluations of one computation must agree, and TF32 off while checking.

The exporters check a trace against the eager code it recorded, and a saved file against the
trace, to catch a wrong trace: a baked-in constant, a branch taken the other way, a lost
input. Such faults change results by far more than rounding does. How much rounding to allow:

  * CPU, float32, same computation: nothing. The same kernels run in the same order and give
    bitwise equal results (measured: every |traced - eager| of the tiny bundle and of the
    IF-I-M stand-in is 0).
  * CUDA: kernels need not be bitwise reproducible (algorithm choice, atomics, fused kernels
    in a loaded TorchScript module), so the results may differ in the last bits; TF32 is
    switched off while checking (`tf32_disabled`), since with it float32 matmuls and
    convolutions round to 10 mantissa bits (1e-3 on an IF UNet). torch.jit.trace records
    cuDNN's allow_tf32 flag as a constant of every convolution it traces, so on CUDA the
    traces are made with TF32 off too (`trace_precision`): a float32 bundle exported there
    runs its convolutions in full float32, as it was checked. On the CPU the flag changes no
    number and the traces keep torch's default (True), as the committed bundles have it.
  * half precision (float16, bfloat16), or a computation restated by hand (an explicit
    softmax(QK^T), a module written anew, the JIT's own backward): rounding of that dtype.
The allowance is relative to the reference output's largest magnitude (`scale`), with 1 as the
smallest scale so that outputs near 0 get an absolute allowance.
"""
import contextlib

import torch

# Allowed |difference| / max(1, scale) where rounding may differ. float32 on the CPU only
# applies to restated computations (the same computation is exact there); on CUDA float32
# allows for reordered sums and fused kernels across a few hundred layers.
RELATIVE = {
    ("cpu", torch.float32): 1e-5,
    ("cuda", torch.float32): 1e-4,
    ("cpu", torch.float16): 2e-2, ("cuda", torch.float16): 2e-2,
    ("cpu", torch.bfloat16): 1e-1, ("cuda", torch.bfloat16): 1e-1,
}


def allowed_difference(device, dtype, scale=1.0, same_computation=True):
    """Largest acceptable max |a - b| between two evaluations on `device` in `dtype`.

    scale: the largest |value| of the reference output. same_computation: both sides run the
    same operations (a trace and its eager code, a saved file and the trace), as opposed to a
    computation restated by hand. Exactly 0 for the same computation on the CPU in float32.
    """
    kind = torch.device(device).type
    if same_computation and kind == "cpu" and dtype == torch.float32:
        return 0.0
    key = (kind if kind == "cpu" else "cuda", dtype)
    if key not in RELATIVE:
        raise ValueError(f"no tolerance for {dtype} on {kind}")
    return RELATIVE[key] * max(1.0, float(scale))


def max_difference(a, b):
    """max |a - b| in float64, as a float (0.0 for empty tensors)."""
    if a.numel() == 0:
        return 0.0
    return (a.double() - b.double()).abs().max().item()


def max_magnitude(t):
    return t.double().abs().max().item() if t.numel() else 0.0


class ToleranceError(RuntimeError):
    """Two evaluations differ by more than allowed_difference."""


def check_close(got, expected, device, dtype, what, same_computation=True):
    """max |got - expected|; raises ToleranceError naming `what` when it exceeds the allowance."""
    if tuple(got.shape) != tuple(expected.shape):
        raise ToleranceError(f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    diff = max_difference(got, expected)
    scale = max_magnitude(expected)
    allowed = allowed_difference(device, dtype, scale, same_computation)
    if not diff <= allowed:  # also catches NaN
        raise ToleranceError(f"{what} differ by {diff:.3g} (allowed {allowed:.3g} for "
                             f"{str(dtype).replace('torch.', '')} on {torch.device(device).type}, "
                             f"|reference| up to {scale:.3g})")
    return diff


@contextlib.contextmanager
def tf32_disabled():
    """Full float32 precision for CUDA matmuls and convolutions inside the block.

    PyTorch allows TF32 for cuDNN convolutions by default (and for matmuls in some versions);
    the previous settings are restored on exit. Harmless without CUDA."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = False
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def trace_precision(device):
    """The context to trace in on `device`: TF32 off on CUDA (the traced convolutions keep
    the flag they were traced with), torch's defaults elsewhere (the flag changes no CPU
    result, and the committed bundles were traced with the default)."""
    if torch.device(device).type == "cuda":
        return tf32_disabled()
    return contextlib.nullcontext()

"""Write golden tensors in a form the C++ tests can read without Python.

The tensors become buffers of a scripted module: LibTorch loads it with torch::jit::load and
tests/golden_io.h reads the buffers back by name. Names may not contain dots.
"""
import torch

from .torchscript import saved_as


@saved_as("golden_io")
class _TensorContainer(torch.nn.Module):
    def __init__(self, tensors):
        super().__init__()
        for name, value in tensors.items():
            self.register_buffer(name, value.detach().contiguous().cpu())

    def forward(self):
        return 0


def save_tensors(path, tensors):
    """tensors: dict name -> torch.Tensor (names: letters, digits, underscores)."""
    for name in tensors:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"golden tensor name {name!r} must be alphanumeric/underscore")
    torch.jit.script(_TensorContainer(tensors)).save(str(path))


def utf8(text):
    """A string as a uint8 tensor of its UTF-8 bytes (how goldens store text)."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)

"""Phases 3 and 4 of the IF export: trace the bundle's modules, then make their graphs
device-independent.

The traced classes keep the names the committed bundles were saved with
(`__torch__.UNetBundleModule` etc., from the days export_if.py defined them as a script; see
..torchscript).
"""
import os
import warnings

import torch

from ..torchscript import saved_as
from .if_attention import check_added_kv, install_capture
from .if_common import TEXT_TOKENS, example_inputs, log, stage2_inputs


@saved_as("")
class UNetBundleModule(torch.nn.Module):
    """The UNet as the bundle sees it: two methods, one set of weights."""

    def __init__(self, unet, state):
        super().__init__()
        self.unet = unet
        self._capture = state  # plain Python object: not a parameter, not traced

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         return_dict=False)[0]

    def forward_with_attention(self, sample, timestep, encoder_hidden_states):
        self._capture.start()
        try:
            out = self.forward(sample, timestep, encoder_hidden_states)
        finally:
            maps = self._capture.stop()
        return out, torch.stack(maps)


@saved_as("")
class TextEncoderBundleModule(torch.nn.Module):
    """forward(input_ids (B,77) int64, attention_mask (B,77) int64) -> last hidden state (B,77,D)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                            return_dict=False)[0]


@saved_as("")
class Stage2UNetBundleModule(torch.nn.Module):
    """forward(sample (B,6,S,S), timestep 0-d int64, text (B,77,D), class_labels (B,) int64).

    sample = [noisy picture (3), noise-augmented upscaled stage I picture (3)];
    class_labels = the augmentation noise level of each batch entry; returns
    [epsilon (3), learned_range variance (3)]."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, class_labels):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         class_labels=class_labels, return_dict=False)[0]


def trace_quietly(fn):
    """Run a tracing function, collect its warnings and print each distinct one once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    seen = {}
    for w in caught:
        key = (w.category.__name__, str(w.message).splitlines()[0])
        seen.setdefault(key, f"{os.path.basename(w.filename)}:{w.lineno}")
    for (category, message), where in seen.items():
        log(f"  trace warning ({category}, {where}): {message[:160]}")
    return result


def trace_unet(unet, state, text_dim):
    module = UNetBundleModule(unet, state).eval()
    inputs = example_inputs(unet, text_dim, 2, unet.dtype, unet.device)
    log("tracing the UNet (batch 2): forward, forward_with_attention")
    traced = trace_quietly(lambda: torch.jit.trace_module(
        module, {"forward": inputs, "forward_with_attention": inputs}, check_trace=False))
    return traced


def tokenize(spiece_path, texts):
    """T5 tokenisation as IF's pipeline does it (padding to 77, truncation, eos)."""
    from transformers import T5Tokenizer
    tok = T5Tokenizer(vocab_file=spiece_path, extra_ids=100, model_max_length=TEXT_TOKENS,
                      legacy=True)
    enc = tok(texts, padding="max_length", max_length=TEXT_TOKENS, truncation=True,
              add_special_tokens=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def trace_text_encoder(text_encoder, spiece_path):
    module = TextEncoderBundleModule(text_encoder).eval()
    ids, mask = tokenize(spiece_path, ["a photo of a dog", "an oil painting of a cat"])
    device = text_encoder.device
    log("tracing the text encoder (batch 2)")
    return trace_quietly(lambda: torch.jit.trace(module, (ids.to(device), mask.to(device)),
                                                 check_trace=False))


def trace_unet_stage2(unet, text_dim):
    check_added_kv(unet, "stage II layer")
    # The same processor as stage I's, capturing nothing: diffusers' AttnAddedKVProcessor
    # math without the device constant of Attention.get_attention_scores.
    install_capture(unet, [])
    module = Stage2UNetBundleModule(unet).eval()
    inputs = stage2_inputs(unet, text_dim, 2, unet.dtype, unet.device, levels=[50, 250])
    log("tracing the stage II UNet (batch 2): forward")
    return trace_quietly(lambda: torch.jit.trace(module, inputs, check_trace=False))


def script_methods(module):
    """(qualified name, graph) of every method of a ScriptModule and its submodules."""
    for prefix, sub in module.named_modules():
        for method in sub._c._method_names():
            yield f"{prefix or '<top>'}.{method}", sub._c._get_method(method).graph


def remove_device_constants(module):
    """Replace every Device constant by prim::device(first tensor input of that graph).

    torch.jit.trace records `device=x.device` arguments (torch.arange, .to(device), ...) as
    constants, which would pin the bundle to the tracing device. All tensors of one call
    live on one device, so the device of any tensor input is the right one.
    Returns the number of constants replaced.
    """
    device_type = torch._C.DeviceObjType.get()
    replaced = 0
    for where, graph in script_methods(module):
        constants = [n for n in graph.findAllNodes("prim::Constant")
                     if n.output().type() == device_type]
        if not constants:
            continue
        anchor = next((v for v in graph.inputs() if v.type().kind() == "TensorType"), None)
        if anchor is None:
            raise RuntimeError(f"{where}: device constant but no tensor input to take it from")
        node = graph.create("prim::device", [anchor])
        node.output().setType(device_type)
        node.insertBefore(next(iter(graph.nodes())))
        for c in constants:
            c.output().replaceAllUsesWith(node.output())
            c.destroy()
        replaced += len(constants)
        graph.lint()
    return replaced


def device_constants(module):
    """Number of Device constants left in the graphs of a ScriptModule (0 after
    remove_device_constants)."""
    device_type = torch._C.DeviceObjType.get()
    return sum(1 for _, graph in script_methods(module)
               for node in graph.findAllNodes("prim::Constant")
               if node.output().type() == device_type)

"""Eager diffusers / transformers models rebuilt from a bundle's files alone.

UNet2DConditionModel and T5EncoderModel from manifest.json's configs, their weights from the
state_dict of the TorchScript files with the bundle wrapper's prefix stripped, transformers'
T5Tokenizer on the bundle's spiece.model, the tiny noise-aware CLIP's modules with the weights
of clip_image_encoder.pt / clip_text_encoder.pt. So a golden run depends only on committed
files, and check_bundle.py can compare the traced files with eager code.
"""
import os

import torch

from .. import glide_clip as cm
from .. import manifest as bm
from ..export.glide_clip import BPE_FILE, IMAGE_FILE, TEXT_FILE
from ..tiny.glide_clip import TINY_CLIP_CONFIG

MAX_LENGTH = 77


def _weights(bundle, file, prefix):
    """A TorchScript file's state_dict with the bundle wrapper's prefix stripped (float32)."""
    state = torch.jit.load(os.path.join(bundle, file), map_location="cpu").state_dict()
    assert all(k.startswith(prefix) for k in state), f"{file}: keys without {prefix!r}"
    return {k[len(prefix):]: v.float() for k, v in state.items()}


def load_bundle(bundle, check_dtype=True):
    """Eager diffusers UNet and transformers T5 encoder rebuilt from the bundle's files.

    Stage I of a schema 1 or 2 bundle. Returns (unet, text_encoder, tokenizer, scheduler),
    float32 on the CPU.
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    manifest = bm.load(bundle)
    if check_dtype:
        assert manifest["dtype"] == "float32", "the golden run is float32"
    stage1 = bm.stage(manifest, 1)

    unet = UNet2DConditionModel.from_config(stage1["unet"]["config"])
    unet.load_state_dict(_weights(bundle, stage1["unet"]["file"], "unet."), strict=True)
    text_encoder = T5EncoderModel(T5Config.from_dict(manifest["text_encoder"]["config"]))
    text_encoder.load_state_dict(_weights(bundle, manifest["text_encoder"]["file"], "encoder."),
                                 strict=True)
    tokenizer = T5Tokenizer(vocab_file=os.path.join(bundle, manifest["tokenizer"]["file"]),
                            extra_ids=100, model_max_length=MAX_LENGTH, legacy=True)
    scheduler = DDPMScheduler(**stage1["scheduler"])
    return unet.eval(), text_encoder.eval(), tokenizer, scheduler


def load_stage2(bundle, check_dtype=True):
    """Eager stage II of a schema 2 bundle, rebuilt from its files.

    Returns (unet, scheduler, noising_scheduler, stage entry), float32 on the CPU; None
    when the bundle has no stage II."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    manifest = bm.load(bundle)
    if check_dtype:
        assert manifest["dtype"] == "float32", "the golden run is float32"
    stage2 = bm.stage(manifest, 2)
    if stage2 is None:
        return None
    unet = UNet2DConditionModel.from_config(stage2["unet"]["config"])
    unet.load_state_dict(_weights(bundle, stage2["unet"]["file"], "unet."), strict=True)
    return (unet.eval(), DDPMScheduler(**stage2["scheduler"]),
            DDPMScheduler(**stage2["noising_scheduler"]), stage2)


def encode(texts, tokenizer, text_encoder):
    """IFPipeline.encode_prompt for a list of texts (clean_caption=False):
    returns (input_ids, attention_mask, text states)."""
    from diffusers import IFPipeline

    texts = IFPipeline._text_preprocessing(None, texts, clean_caption=False)
    enc = tokenizer(texts, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                    add_special_tokens=True, return_tensors="pt")
    states = text_encoder(enc.input_ids, attention_mask=enc.attention_mask)[0]
    return enc.input_ids, enc.attention_mask, states


def load_clip(bundle):
    """The tiny noise-aware CLIP: glide_clip's embedders with the bundle's TorchScript weights.

    Returns ((image embedder, its TorchScript file), (text embedder, its file), tokenizer)."""
    cfg = TINY_CLIP_CONFIG
    mods = []
    for file, embedder in ((IMAGE_FILE, cm.ImageEmbedder(cm.ImageEncoder.from_config(cfg))),
                           (TEXT_FILE, cm.TextEmbedder(cm.TextEncoder.from_config(cfg)))):
        scripted = torch.jit.load(os.path.join(bundle, file), map_location="cpu")
        state = scripted.state_dict()
        missing, unexpected = embedder.load_state_dict(state, strict=False)
        # TorchScript also saves the non-persistent buffers (CLIP pixel statistics, causal
        # bias): they must equal the module's own.
        buffers = dict(embedder.named_buffers())
        assert not missing and set(unexpected) <= set(buffers), (missing, unexpected)
        for key in unexpected:
            assert torch.equal(buffers[key], state[key]), key
        mods.append((embedder.eval().requires_grad_(False), scripted))
    tokenizer = cm.BPETokenizer(os.path.join(bundle, BPE_FILE))
    return mods[0], mods[1], tokenizer

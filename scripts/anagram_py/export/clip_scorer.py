"""Export a transformers CLIPModel as an `anagram score` scorer folder (docs/scorer.md):
trace both encoders, check them against the eager model, write the files and scorer.json."""
import gzip
import json
import os
import shutil
import sys

import torch

from .. import glide_clip
from .. import manifest as bm
from ..files import atomic_write_text
from ..paths import TINY_BUNDLE
from ..tolerance import check_close, tf32_disabled, trace_precision
from ..torchscript import saved_as

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
VOCAB_LICENSE = "bpe_simple_vocab_16e6.LICENSE"
IMAGE_FILE = "image_encoder.pt"
TEXT_FILE = "text_encoder.pt"
SCORER_JSON = "scorer.json"
FORMAT = "anagram-scorer"
SCHEMA_VERSION = 1
CONTEXT = 77
START, END = 49406, 49407
# The committed scorer's files were traced when these classes lived in
# scripts/export_clip_scorer.py.
_SAVED_MODULE = "export_clip_scorer"
# OpenAI CLIP's normalisation (CLIPImageProcessor's defaults as well).
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
# Prompts of different lengths for the text check (and a long one that fills the context).
CHECK_PROMPTS = ["a dog", "an oil painting of a snowy mountain village at dusk",
                 "A Fox!", " ".join(["lots of words"] * 40)]


@saved_as(_SAVED_MODULE)
class ImageFeatures(torch.nn.Module):
    """CLIPModel.get_image_features: vision tower, pooled output, visual projection."""

    def __init__(self, model, dtype):
        super().__init__()
        self.vision_model = model.vision_model
        self.visual_projection = model.visual_projection
        self.use_half = dtype == torch.float16

    def forward(self, pixel_values):
        x = pixel_values.half() if self.use_half else pixel_values
        pooled = self.vision_model(pixel_values=x, return_dict=False)[1]
        return self.visual_projection(pooled).float()


@saved_as(_SAVED_MODULE)
class TextFeatures(torch.nn.Module):
    """CLIPModel.get_text_features(input_ids) without an attention mask.

    transformers' CLIPTextTransformer.forward, restated with its own submodules so that the
    trace holds no device constants: it builds the causal mask with torch.full/arange on
    the device seen while tracing (the traced file would then fail on CUDA) and pools with
    an arange index. Here the causal mask is a buffer (it moves with the module) and the
    pooling is a gather at the first end token (49407). For valid ids (start 49406, BPE
    ids < 49406, end 49407, 0 padding) that is the same position as transformers' pooling
    (argmax of the ids for old configs with eos_token_id 2, first eos_token_id otherwise);
    trace_encoders checks the two against each other."""

    def __init__(self, model, dtype):
        super().__init__()
        tm = model.text_model
        self.embeddings = tm.embeddings
        self.encoder = tm.encoder
        self.final_layer_norm = tm.final_layer_norm
        self.text_projection = model.text_projection
        n = model.config.text_config.max_position_embeddings
        # transformers' mask: 0 on and below the diagonal, the dtype's lowest value above.
        mask = torch.full((n, n), torch.finfo(dtype).min, dtype=dtype).triu(1)
        self.register_buffer("causal_mask", mask[None, None], persistent=True)

    def forward(self, input_ids):
        h = self.embeddings(input_ids=input_ids)
        b, n = input_ids.shape
        mask = self.causal_mask[:, :, :n, :n].expand(b, 1, n, n)
        h = self.encoder(inputs_embeds=h, causal_attention_mask=mask, return_dict=False)[0]
        h = self.final_layer_norm(h)
        first_end = (input_ids == END).int().argmax(dim=-1)
        pooled = h.gather(1, first_end[:, None, None].expand(b, 1, h.shape[-1])).squeeze(1)
        return self.text_projection(pooled).float()


def log_stderr(s):
    print(s, file=sys.stderr)


def prompt_ids(prompts, vocab=os.path.join(TINY_BUNDLE, VOCAB_FILE)):
    """(B, 77) int64 ids in OpenAI CLIP's format, with the repository's tokenizer."""
    tokens, _ = glide_clip.BPETokenizer(vocab).tokens_and_lengths(prompts, CONTEXT)
    return tokens


def graph_ops(module):
    """Sorted operator names ("aten::linear", ...) of a traced module, submodules inlined."""
    return sorted({n.kind() for n in module.inlined_graph.nodes()})


def trace_encoders(model, device="cpu", dtype=torch.float32, log=log_stderr, seed=0):
    """Trace both encoders of a transformers CLIPModel and check them against eager (TF32 off;
    ..tolerance: the image encoder is the same computation, the text encoder a restated one).

    Returns (image_traced, text_traced). Raises RuntimeError when a check fails."""
    model = model.eval().to(device=device, dtype=dtype)
    vc, tc = model.config.vision_config, model.config.text_config
    if tc.max_position_embeddings != CONTEXT:
        raise RuntimeError(f"text context {tc.max_position_embeddings}, want {CONTEXT}")
    if tc.vocab_size != 49408:
        raise RuntimeError(f"text vocabulary {tc.vocab_size}, want 49408 (OpenAI CLIP BPE)")
    size = vc.image_size
    image = ImageFeatures(model, dtype).eval()
    text = TextFeatures(model, dtype).eval()
    g = torch.Generator().manual_seed(seed)

    def pixels(b):  # roughly normalised pixel values
        return torch.randn((b, 3, size, size), generator=g).clamp(-2, 2).to(device)

    ids = prompt_ids(CHECK_PROMPTS).to(device)
    with torch.no_grad(), trace_precision(device):  # TF32 off on CUDA: the traces record it
        x2 = pixels(2)
        image_t = torch.jit.trace(image, (x2,), check_trace=True,
                                  check_inputs=[(pixels(1),), (pixels(3),)])
        text_t = torch.jit.trace(text, (ids[:2],), check_trace=True,
                                 check_inputs=[(ids[2:3],), (ids[1:4],)])
    with torch.no_grad(), tf32_disabled():
        for b in (1, 2, 3):
            x = pixels(b)
            eager = model.get_image_features(pixel_values=x.to(dtype)).float()
            err = check_close(image_t(x), eager, device, dtype,
                              f"traced and eager image encoder (batch {b})")
            log(f"image encoder batch {b}: max |traced - eager| = {err:.3g}")
        for rows in ([0], [1, 2], [3, 0, 2]):
            t = ids[rows]
            eager = model.get_text_features(input_ids=t).float()
            err = check_close(text_t(t), eager, device, dtype,
                              f"traced and eager text encoder (prompts {rows})",
                              same_computation=False)
            log(f"text encoder prompts {rows}: max |traced - eager| = {err:.3g}")
    return image_t, text_t


def _check_saved(path, example, expected, dtype):
    """Reload a saved TorchScript file, refuse pickled state, compare its output."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(".py") and b"__setstate__" in z.read(name):
                raise RuntimeError(f"{path}: {name} defines __setstate__")
    m = torch.jit.load(path, map_location=example.device)
    with torch.no_grad():
        got = m(example)
    check_close(got, expected, example.device, dtype, f"reloaded {path} and the trace")


def export_scorer(model, out_dir, name, description, source, image_mean=None, image_std=None,
                  dtype=torch.float32, device="cpu", force=False, log=log_stderr):
    """Trace, check and write MODEL (a transformers CLIPModel) as a scorer folder.

    Returns the scorer.json object. Nothing is written when a check fails."""
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(f"{out_dir} exists and is not empty (use --force to overwrite)")
    image_mean = list(image_mean or OPENAI_MEAN)
    image_std = list(image_std or OPENAI_STD)
    image_t, text_t = trace_encoders(model, device=device, dtype=dtype, log=log)
    vc = model.config.vision_config
    embed_dim = model.config.projection_dim
    logit_scale = float(model.logit_scale.detach().float().exp().item())

    os.makedirs(out_dir, exist_ok=True)
    ip, tp = os.path.join(out_dir, IMAGE_FILE), os.path.join(out_dir, TEXT_FILE)
    image_t.save(ip)
    text_t.save(tp)
    g = torch.Generator().manual_seed(1)
    x = torch.randn((2, 3, vc.image_size, vc.image_size), generator=g).to(device)
    ids = prompt_ids(CHECK_PROMPTS[:2]).to(device)
    with torch.no_grad(), tf32_disabled():
        _check_saved(ip, x, image_t(x), dtype)
        _check_saved(tp, ids, text_t(ids), dtype)
    for f in (VOCAB_FILE, VOCAB_LICENSE):
        shutil.copyfile(os.path.join(TINY_BUNDLE, f), os.path.join(out_dir, f))
    with gzip.open(os.path.join(out_dir, VOCAB_FILE)) as f:
        f.read()  # a readable gzip

    meta = {
        "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "name": name, "description": description, "source": source,
        "image_encoder": IMAGE_FILE, "text_encoder": TEXT_FILE, "vocab": VOCAB_FILE,
        "image_size": int(vc.image_size), "image_mean": image_mean, "image_std": image_std,
        "context_length": CONTEXT, "embed_dim": int(embed_dim),
        "logit_scale": logit_scale,
        "files": {f: bm.file_entry(os.path.join(out_dir, f))
                  for f in (IMAGE_FILE, TEXT_FILE, VOCAB_FILE)},
    }
    atomic_write_text(os.path.join(out_dir, SCORER_JSON), json.dumps(meta, indent=2) + "\n",
                      prefix=".scorer.")
    log(f"image encoder ops: {', '.join(graph_ops(image_t))}")
    log(f"text encoder ops: {', '.join(graph_ops(text_t))}")
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    log(f"wrote {out_dir} ({total / 1e6:.1f} MB)")
    return meta


def normalisation(model_dir):
    """image_mean / image_std from the checkpoint's preprocessor_config.json, if any."""
    path = os.path.join(model_dir, "preprocessor_config.json")
    if os.path.isfile(path):
        with open(path) as f:
            cfg = json.load(f)
        return cfg.get("image_mean"), cfg.get("image_std")
    return None, None


def check_tokenizer(model_dir, log=log_stderr):
    """Compare the checkpoint's own CLIPTokenizer (when it has one) with the repository's."""
    try:
        from transformers import CLIPTokenizer
        tok = CLIPTokenizer.from_pretrained(model_dir)
    except Exception as e:  # no tokenizer files: nothing to compare
        log(f"tokenizer check skipped ({type(e).__name__})")
        return
    ours = prompt_ids(CHECK_PROMPTS[:3])
    theirs = tok(CHECK_PROMPTS[:3], padding="max_length", max_length=CONTEXT,
                 truncation=True, return_tensors="pt")["input_ids"]
    # transformers pads with the end token (49407); ours with 0 as OpenAI CLIP does. Only
    # the ids up to and including the first end token matter (causal attention).
    for r in range(ours.shape[0]):
        n = int((ours[r] == END).nonzero()[0]) + 1
        if not torch.equal(ours[r, :n], theirs[r, :n]):
            raise RuntimeError(f"tokenizer mismatch on {CHECK_PROMPTS[r]!r}: "
                               f"{ours[r, :n].tolist()} vs {theirs[r, :n].tolist()}")
    log("tokenizer check: the checkpoint's CLIPTokenizer agrees with the repository's")

#!/usr/bin/env python3
"""Export a transformers CLIPModel as an `anagram score` scorer folder (docs/scorer.md).

Usage:
    .venv/bin/python scripts/export_clip_scorer.py MODEL_DIR_OR_HUB_ID OUT_DIR \
        [--name NAME] [--description TEXT] [--dtype float32|float16] [--force]

MODEL_DIR_OR_HUB_ID is a local folder holding a transformers CLIP checkpoint
(config.json + pytorch_model.bin or model.safetensors), e.g. a downloaded
openai/clip-vit-large-patch14 or openai/clip-vit-base-patch32. A hub id works only where
the model is already in the local Hugging Face cache: this script sets HF_HUB_OFFLINE=1 and
never downloads anything (download on a machine with network access, e.g.
`huggingface-cli download openai/clip-vit-large-patch14 --local-dir clip-l14`, and copy
the folder over).

Writes OUT_DIR/ (refused when OUT_DIR exists and is not empty, unless --force):
    image_encoder.pt   TorchScript: pixel_values float32 (B,3,S,S), resized and normalised
                       -> (B, embed_dim) float32 = CLIPModel.get_image_features
    text_encoder.pt    TorchScript: input_ids int64 (B,77), OpenAI CLIP format (49406, BPE ids,
                       49407, 0 padding) -> (B, embed_dim) float32 = get_text_features(input_ids)
                       with no attention mask
    bpe_simple_vocab_16e6.txt.gz (+ .LICENSE)   copied from models/tiny-if
    scorer.json        format, sizes, normalisation, logit_scale, sha256 and bytes of the files

Both encoders are traced (torch.jit.trace with a batch of 2) and each is checked against
the eager model before anything is written: batches of 1, 2 and 3, random pixels, and
prompts of different lengths. --dtype float16 keeps weights and arithmetic in half
precision (inputs and outputs stay float32); LibTorch 1.13 has no half kernels on the CPU,
so this needs CUDA here and the files it writes run only on a CUDA device.

export_scorer(model, out_dir, ...) is the reusable part (scripts/make_tiny_clip_scorer.py
calls it with a tiny random model).
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundle_manifest  # noqa: E402  (sha256/bytes entries, same as the model bundles)
import clip_model  # noqa: E402  (the repository's CLIP BPE tokenizer)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB_DIR = os.path.join(ROOT, "models", "tiny-if")
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
VOCAB_LICENSE = "bpe_simple_vocab_16e6.LICENSE"
IMAGE_FILE = "image_encoder.pt"
TEXT_FILE = "text_encoder.pt"
SCORER_JSON = "scorer.json"
FORMAT = "anagram-scorer"
SCHEMA_VERSION = 1
CONTEXT = 77
START, END = 49406, 49407
# OpenAI CLIP's normalisation (CLIPImageProcessor's defaults as well).
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
# Prompts of different lengths for the text check (and a long one that fills the context).
CHECK_PROMPTS = ["a dog", "an oil painting of a snowy mountain village at dusk",
                 "A Fox!", " ".join(["lots of words"] * 40)]


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


def prompt_ids(prompts, vocab=os.path.join(VOCAB_DIR, VOCAB_FILE)):
    """(B, 77) int64 ids in OpenAI CLIP's format, with the repository's tokenizer."""
    tokens, _ = clip_model.BPETokenizer(vocab).tokens_and_lengths(prompts, CONTEXT)
    return tokens


def graph_ops(module):
    """Sorted operator names ("aten::linear", ...) of a traced module, submodules inlined."""
    return sorted({n.kind() for n in module.inlined_graph.nodes()})


def _close(a, b, what, atol, rtol):
    if a.shape != b.shape:
        raise RuntimeError(f"{what}: shape {tuple(a.shape)} != eager {tuple(b.shape)}")
    err = (a.double() - b.double()).abs().max().item()
    scale = b.double().abs().max().item()
    if not err <= atol + rtol * scale:
        raise RuntimeError(f"{what}: traced differs from eager by {err:g} (|eager| max {scale:g})")
    return err


def trace_encoders(model, device="cpu", dtype=torch.float32, log=log_stderr, seed=0):
    """Trace both encoders of a transformers CLIPModel and check them against eager.

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
    atol, rtol = (1e-4, 1e-4) if dtype == torch.float32 else (2e-2, 2e-2)
    with torch.no_grad():
        x2 = pixels(2)
        image_t = torch.jit.trace(image, (x2,), check_trace=True,
                                  check_inputs=[(pixels(1),), (pixels(3),)])
        text_t = torch.jit.trace(text, (ids[:2],), check_trace=True,
                                 check_inputs=[(ids[2:3],), (ids[1:4],)])
        for b in (1, 2, 3):
            x = pixels(b)
            eager = model.get_image_features(pixel_values=x.to(dtype)).float()
            err = _close(image_t(x), eager, f"image encoder, batch {b}", atol, rtol)
            log(f"image encoder batch {b}: max |traced - eager| = {err:.3g}")
        for rows in ([0], [1, 2], [3, 0, 2]):
            t = ids[rows]
            eager = model.get_text_features(input_ids=t).float()
            err = _close(text_t(t), eager, f"text encoder, rows {rows}", atol, rtol)
            log(f"text encoder prompts {rows}: max |traced - eager| = {err:.3g}")
    return image_t, text_t


def _check_saved(path, example, expected):
    """Reload a saved TorchScript file, refuse pickled state, compare its output."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(".py") and b"__setstate__" in z.read(name):
                raise RuntimeError(f"{path}: {name} defines __setstate__")
    m = torch.jit.load(path, map_location=example.device)
    with torch.no_grad():
        got = m(example)
    if not torch.equal(got, expected):
        raise RuntimeError(f"{path}: reloaded module gives different output")


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
    with torch.no_grad():
        _check_saved(ip, x, image_t(x))
        _check_saved(tp, ids, text_t(ids))
    for f in (VOCAB_FILE, VOCAB_LICENSE):
        shutil.copyfile(os.path.join(VOCAB_DIR, f), os.path.join(out_dir, f))
    with gzip.open(os.path.join(out_dir, VOCAB_FILE)) as f:
        f.read()  # a readable gzip

    meta = {
        "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "name": name, "description": description, "source": source,
        "image_encoder": IMAGE_FILE, "text_encoder": TEXT_FILE, "vocab": VOCAB_FILE,
        "image_size": int(vc.image_size), "image_mean": image_mean, "image_std": image_std,
        "context_length": CONTEXT, "embed_dim": int(embed_dim),
        "logit_scale": logit_scale,
        "files": {f: bundle_manifest.file_entry(os.path.join(out_dir, f))
                  for f in (IMAGE_FILE, TEXT_FILE, VOCAB_FILE)},
    }
    fd, tmp = tempfile.mkstemp(prefix=".scorer.", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(out_dir, SCORER_JSON))
    log(f"image encoder ops: {', '.join(graph_ops(image_t))}")
    log(f"text encoder ops: {', '.join(graph_ops(text_t))}")
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    log(f"wrote {out_dir} ({total / 1e6:.1f} MB)")
    return meta


def _normalisation(model_dir):
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="local transformers CLIP folder (or a cached hub id)")
    ap.add_argument("out_dir")
    ap.add_argument("--name", help="scorer name (default: the model folder's name)")
    ap.add_argument("--description", help="one line (default: made from the source)")
    ap.add_argument("--source", help="what it was exported from, e.g. openai/clip-vit-large-patch14 "
                    "(default: the checkpoint's _name_or_path)")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import CLIPModel

    dtype = torch.float16 if args.dtype == "float16" else torch.float32
    device = "cpu"
    if dtype == torch.float16:
        if not torch.cuda.is_available():
            sys.exit("error: --dtype float16 needs CUDA (LibTorch/PyTorch 1.13 have no CPU "
                     "half kernels); the exported files would run only on CUDA anyway")
        device = "cuda"
    model = CLIPModel.from_pretrained(args.model, torch_dtype=torch.float32)
    source = args.source or getattr(model.config, "_name_or_path", None) or args.model
    name = args.name or os.path.basename(os.path.normpath(args.model))
    description = args.description or f"CLIP {source} exported by scripts/export_clip_scorer.py ({args.dtype})"
    mean, std = _normalisation(args.model) if os.path.isdir(args.model) else (None, None)
    if os.path.isdir(args.model):
        check_tokenizer(args.model)
    try:
        meta = export_scorer(model, args.out_dir, name, description, source, mean, std,
                             dtype=dtype, device=device, force=args.force)
    except (FileExistsError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    # Run through the importable module so that the traced classes are named
    # export_clip_scorer.ImageFeatures / TextFeatures, as when make_tiny_clip_scorer.py
    # calls export_scorer (not __main__.ImageFeatures).
    import export_clip_scorer
    export_clip_scorer.main()

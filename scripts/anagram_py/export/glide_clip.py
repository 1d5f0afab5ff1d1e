"""Export GLIDE's noise-aware CLIP (..glide_clip's modules) to TorchScript files inside a
model bundle, and record them in its manifest (docs/bundle.md "clip")."""
import json
import os
import shutil
import sys
import tempfile

import torch

from .. import glide_clip as cm
from .. import manifest as bm
from ..files import atomic_write
from ..tolerance import check_close, tf32_disabled, trace_precision

IMAGE_FILE = "clip_image_encoder.pt"
TEXT_FILE = "clip_text_encoder.pt"
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
DTYPES = {"float32": torch.float32, "float16": torch.float16}


def load_state_dict(path):
    """A GLIDE CLIP checkpoint (a plain state_dict of tensors), on the CPU."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch without weights_only
        sd = torch.load(path, map_location="cpu")
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise SystemExit(f"{path}: expected a state_dict of tensors (GLIDE clip checkpoint)")
    return sd


def load_config(path):
    """GLIDE's CLIP config from a yaml/json file, or GLIDE's own when path is None."""
    if path is None:
        return dict(cm.GLIDE_CLIP_CONFIG)
    with open(path) as f:
        if path.endswith((".yaml", ".yml")):
            import yaml
            return yaml.safe_load(f)
        return json.load(f)


def find_bpe_vocab(explicit):
    """The BPE merges file: `explicit`, else the installed glide_text2im package's."""
    if explicit:
        return explicit
    try:
        from glide_text2im.tokenizer.simple_tokenizer import default_bpe
        return default_bpe()
    except ImportError:
        raise SystemExit("glide_text2im is not installed: pass --bpe-vocab PATH "
                         "(glide_text2im/tokenizer/bpe_simple_vocab_16e6.txt.gz)")


def build_encoders(cfg, image_sd=None, text_sd=None):
    """The image and text encoders of config CFG, with the given weights (strict)."""
    image, text = cm.ImageEncoder.from_config(cfg), cm.TextEncoder.from_config(cfg)
    for name, module, sd in (("image", image, image_sd), ("text", text, text_sd)):
        if sd is not None:
            try:
                module.load_state_dict(sd, strict=True)
            except RuntimeError as e:
                raise SystemExit(f"{name} encoder checkpoint does not match the config: {e}")
    return image, text


def export_clip(image_enc, text_enc, cfg, bundle_dir, bpe_vocab, device="cpu",
                dtype="float32", log=print):
    """Trace both embedders, verify, write them and the BPE file; return the manifest
    "clip" object. Used by scripts/export/export_glide_clip.py, scripts/tiny/make_tiny_clip.py
    and the demo's CLIP training. Raises ToleranceError when a trace or a saved file does not
    reproduce the eager modules (..tolerance; TF32 is off meanwhile)."""
    dev, dt = torch.device(device), DTYPES[dtype]
    if dt == torch.float16 and dev.type == "cpu":
        raise SystemExit("--dtype float16 needs --device cuda (LibTorch's CPU kernels lack "
                         "half-precision conv/matmul); such files then run on CUDA only")
    os.makedirs(bundle_dir, exist_ok=True)
    tokenizer = cm.BPETokenizer(bpe_vocab)  # also checks the vocab file parses
    ctx, size = cfg["max_text_len"], cfg["image_size"]
    image = cm.ImageEmbedder(image_enc.to(dev, dt)).eval()
    text = cm.TextEmbedder(text_enc.to(dev, dt)).eval()

    g = torch.Generator().manual_seed(0)
    trace_img = (torch.rand(2, 3, size, size, generator=g) * 2 - 1).to(dev)
    trace_t = torch.tensor([0, cfg["n_timesteps"] - 1], device=dev)
    trace_tok, trace_len = (x.to(dev) for x in tokenizer.tokens_and_lengths(["a photo of a cat", ""], ctx))
    # A different batch size than the trace's, to check nothing was baked in.
    test_img = (torch.rand(3, 3, size, size, generator=g) * 2 - 1).to(dev)
    test_t = torch.tensor([1, cfg["n_timesteps"] // 2, 999 % cfg["n_timesteps"]], device=dev)
    test_tok, test_len = (x.to(dev) for x in tokenizer.tokens_and_lengths(
        ["dog", "café, 123!", "an oil painting of a snowy mountain village"], ctx))

    with torch.no_grad(), trace_precision(dev):  # TF32 off on CUDA: the traces record it
        traced_img = torch.jit.trace(image, (trace_img, trace_t))
        traced_txt = torch.jit.trace(text, (trace_tok, trace_len))
    with torch.no_grad(), tf32_disabled():
        eager = (image(test_img, test_t), text(test_tok, test_len))
        err_i = check_close(traced_img(test_img, test_t), eager[0], dev, dt,
                            "traced and eager CLIP image encoder")
        err_t = check_close(traced_txt(test_tok, test_len), eager[1], dev, dt,
                            "traced and eager CLIP text encoder")
        paths = os.path.join(bundle_dir, IMAGE_FILE), os.path.join(bundle_dir, TEXT_FILE)
        atomic_write(paths[0], traced_img.save)
        atomic_write(paths[1], traced_txt.save)
        # Read the written files back, as a fresh process would.
        loaded_i, loaded_t = (torch.jit.load(p, map_location=dev) for p in paths)
        check_close(loaded_i(test_img, test_t), eager[0], dev, dt,
                    f"saved {IMAGE_FILE} and the eager image encoder")
        check_close(loaded_t(test_tok, test_len), eager[1], dev, dt,
                    f"saved {TEXT_FILE} and the eager text encoder")
    bpe_dst = os.path.join(bundle_dir, BPE_FILE)
    if os.path.abspath(bpe_vocab) != os.path.abspath(bpe_dst):
        atomic_write(bpe_dst, lambda tmp: shutil.copyfile(bpe_vocab, tmp))
    log(f"traced == eager: image max err {err_i:.3g}, text max err {err_t:.3g}; wrote "
        + ", ".join(f"{os.path.basename(p)} ({os.path.getsize(p)} bytes)" for p in paths + (bpe_dst,)))
    return {
        "image_encoder": IMAGE_FILE,
        "text_encoder": TEXT_FILE,
        "bpe_vocab": BPE_FILE,
        "text_context": ctx,
        "vocab_size": len(tokenizer.encoder),
        "start_token": tokenizer.start_token,
        "end_token": tokenizer.end_token,
        "pad_id": 0,
        "image_size": size,
        "num_timesteps": cfg["n_timesteps"],
        "embedding_dim": cfg["n_embd"],
        "normalized": True,
        "image_input": "[-1,1]",
        "dtype": dtype,
    }


def record_in_manifest(bundle_dir, clip, log=print):
    """Put the "clip" object and its files' hashes into BUNDLE_DIR/manifest.json.

    Other manifest entries and the other "files" entries stay as they are. Returns False
    (and changes nothing) when the folder has no manifest.json yet."""
    if not os.path.isfile(os.path.join(bundle_dir, bm.MANIFEST)):
        log(f"{bundle_dir} has no {bm.MANIFEST}: add the \"clip\" object printed below to it")
        return False
    raw = bm.read_raw(bundle_dir)
    raw["clip"] = clip
    if raw.get("schema_version", 1) >= 2:
        written = {clip["image_encoder"], clip["text_encoder"], clip["bpe_vocab"]}
        raw["files"] = bm.file_entries(bundle_dir, raw, only=written, previous=raw.get("files"))
        bm.write(bundle_dir, raw)
        problems = bm.check_files(bundle_dir, raw)
        if problems:
            raise SystemExit("manifest files check: " + "; ".join(problems))
        log(f"recorded \"clip\" and the sha256 of {', '.join(sorted(written))} in "
            f"{os.path.join(bundle_dir, bm.MANIFEST)}")
    else:
        with open(os.path.join(bundle_dir, bm.MANIFEST), "w") as f:
            json.dump(raw, f, indent=2)
            f.write("\n")
        log(f"recorded \"clip\" in the schema 1 {os.path.join(bundle_dir, bm.MANIFEST)}")
    return True


def compare_with_glide(image_enc, text_enc, image_sd, text_sd, bpe_vocab, cfg):
    """Eager modules vs glide_text2im's own CLIPModel with the same weights (float32, CPU)."""
    from glide_text2im.clip.model_creation import create_clip_model
    from glide_text2im.tokenizer.simple_tokenizer import SimpleTokenizer
    fd, cfg_path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)  # JSON is valid YAML
    try:
        ref = create_clip_model(cfg_path, torch.device("cpu"), SimpleTokenizer(bpe_vocab))
    finally:
        os.unlink(cfg_path)
    ref.image_encoder.load_state_dict(image_sd)
    ref.text_encoder.load_state_dict(text_sd)
    ours_i, ours_t = cm.ImageEmbedder(image_enc.float().cpu()), cm.TextEmbedder(text_enc.float().cpu())
    prompts = ["dog", "a photo of a cat", "", "café, 123!"]
    x = torch.rand(2, 3, cfg["image_size"], cfg["image_size"], generator=torch.Generator().manual_seed(1)) * 2 - 1
    t = torch.tensor([10, cfg["n_timesteps"] - 1])
    with torch.no_grad():
        tok, ln = cm.BPETokenizer(bpe_vocab).tokens_and_lengths(prompts, cfg["max_text_len"])
        rtok, rln = ref.encode_prompts(prompts)
        if not (torch.equal(tok, rtok.cpu()) and torch.equal(ln, rln.cpu())):
            raise SystemExit("tokenizer differs from glide_text2im's")
        cpu = torch.device("cpu")
        ei = check_close(ours_i(x, t), ref.image_embeddings(x, t), cpu, torch.float32,
                         "our image embeddings and glide_text2im's", same_computation=False)
        et = check_close(ours_t(tok, ln), ref.text_embeddings(prompts), cpu, torch.float32,
                         "our text embeddings and glide_text2im's", same_computation=False)
    print(f"vs glide_text2im: image max err {ei:.3g}, text max err {et:.3g}", file=sys.stderr)

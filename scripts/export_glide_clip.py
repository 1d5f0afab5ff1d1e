#!/usr/bin/env python3
"""Export GLIDE's noise-aware CLIP to TorchScript files inside a model bundle.

Usage:
    .venv/bin/python scripts/export_glide_clip.py --image-enc clip_image_enc.pt \
        --text-enc clip_text_enc.pt --bundle BUNDLE_DIR [--bpe-vocab PATH] \
        [--device cpu|cuda] [--dtype float32|float16] [--config CONFIG] [--compare-glide]

Inputs are the two GLIDE checkpoint files (plain state_dicts, GLIDE's download names
`clip/image-enc` and `clip/text-enc`). They load with strict=True into the modules of
scripts/clip_model.py. Writes into BUNDLE_DIR (each file via a temporary name + rename):

    clip_image_encoder.pt   forward(image (B,3,S,S) float [-1,1], t (B,) int64) -> (B,E) float32
    clip_text_encoder.pt    forward(tokens (B,77) int64, lengths (B,) int64) -> (B,E) float32
    bpe_simple_vocab_16e6.txt.gz   the BPE merges of GLIDE's tokenizer

Both outputs are unit-normalised (z / (||z|| + 1e-12)), exactly GLIDE's
CLIPModel.image_embeddings / text_embeddings; the image encoder applies (x + 1) * 127.5 to
its input itself. When BUNDLE_DIR has a schema 2 manifest.json, its "clip" object and the
"files" entries (sha256, bytes) of the three files are written into it (other entries are
kept); a schema 1 manifest gets the "clip" object only. Prints the "clip" object (see
docs/bundle.md) on stdout either way.
The BPE file comes from --bpe-vocab, else from an installed glide_text2im package.
--compare-glide checks the eager modules against an installed glide_text2im's own CLIP.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundle_manifest as bm  # noqa: E402
import clip_model as cm  # noqa: E402

IMAGE_FILE = "clip_image_encoder.pt"
TEXT_FILE = "clip_text_encoder.pt"
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
DTYPES = {"float32": torch.float32, "float16": torch.float16}


def load_state_dict(path):
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch without weights_only
        sd = torch.load(path, map_location="cpu")
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise SystemExit(f"{path}: expected a state_dict of tensors (GLIDE clip checkpoint)")
    return sd


def load_config(path):
    if path is None:
        return dict(cm.GLIDE_CLIP_CONFIG)
    with open(path) as f:
        if path.endswith((".yaml", ".yml")):
            import yaml
            return yaml.safe_load(f)
        return json.load(f)


def find_bpe_vocab(explicit):
    if explicit:
        return explicit
    try:
        from glide_text2im.tokenizer.simple_tokenizer import default_bpe
        return default_bpe()
    except ImportError:
        raise SystemExit("glide_text2im is not installed: pass --bpe-vocab PATH "
                         "(glide_text2im/tokenizer/bpe_simple_vocab_16e6.txt.gz)")


def build_encoders(cfg, image_sd=None, text_sd=None):
    image, text = cm.ImageEncoder.from_config(cfg), cm.TextEncoder.from_config(cfg)
    for name, module, sd in (("image", image, image_sd), ("text", text, text_sd)):
        if sd is not None:
            try:
                module.load_state_dict(sd, strict=True)
            except RuntimeError as e:
                raise SystemExit(f"{name} encoder checkpoint does not match the config: {e}")
    return image, text


def _atomic_write(path, write):
    """write(tmp_path) into a temporary file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=os.path.dirname(path))
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check(name, a, b, tol):
    err = (a.float() - b.float()).abs().max().item()
    if not err <= tol:
        raise SystemExit(f"{name}: traced and eager differ by {err:g} (tolerance {tol:g})")
    return err


def export_clip(image_enc, text_enc, cfg, bundle_dir, bpe_vocab, device="cpu",
                dtype="float32", log=print):
    """Trace both embedders, verify, write them and the BPE file; return the manifest
    "clip" object. Shared by this script and scripts/make_tiny_clip.py."""
    dev, dt = torch.device(device), DTYPES[dtype]
    if dt == torch.float16 and dev.type == "cpu":
        raise SystemExit("--dtype float16 needs --device cuda (LibTorch's CPU kernels lack "
                         "half-precision conv/matmul); such files then run on CUDA only")
    os.makedirs(bundle_dir, exist_ok=True)
    tokenizer = cm.BPETokenizer(bpe_vocab)  # also checks the vocab file parses
    ctx, size = cfg["max_text_len"], cfg["image_size"]
    image = cm.ImageEmbedder(image_enc.to(dev, dt)).eval()
    text = cm.TextEmbedder(text_enc.to(dev, dt)).eval()
    tol = 1e-5 if dt == torch.float32 else 2e-2

    g = torch.Generator().manual_seed(0)
    trace_img = (torch.rand(2, 3, size, size, generator=g) * 2 - 1).to(dev)
    trace_t = torch.tensor([0, cfg["n_timesteps"] - 1], device=dev)
    trace_tok, trace_len = (x.to(dev) for x in tokenizer.tokens_and_lengths(["a photo of a cat", ""], ctx))
    # A different batch size than the trace's, to check nothing was baked in.
    test_img = (torch.rand(3, 3, size, size, generator=g) * 2 - 1).to(dev)
    test_t = torch.tensor([1, cfg["n_timesteps"] // 2, 999 % cfg["n_timesteps"]], device=dev)
    test_tok, test_len = (x.to(dev) for x in tokenizer.tokens_and_lengths(
        ["dog", "café, 123!", "an oil painting of a snowy mountain village"], ctx))

    with torch.no_grad():
        traced_img = torch.jit.trace(image, (trace_img, trace_t))
        traced_txt = torch.jit.trace(text, (trace_tok, trace_len))
        eager = (image(test_img, test_t), text(test_tok, test_len))
        err_i = _check("image encoder", traced_img(test_img, test_t), eager[0], tol)
        err_t = _check("text encoder", traced_txt(test_tok, test_len), eager[1], tol)
        paths = os.path.join(bundle_dir, IMAGE_FILE), os.path.join(bundle_dir, TEXT_FILE)
        _atomic_write(paths[0], traced_img.save)
        _atomic_write(paths[1], traced_txt.save)
        # Read the written files back (on the CPU, as a fresh process would).
        loaded_i, loaded_t = (torch.jit.load(p, map_location=dev) for p in paths)
        _check("image encoder (saved)", loaded_i(test_img, test_t), eager[0], tol)
        _check("text encoder (saved)", loaded_t(test_tok, test_len), eager[1], tol)
    bpe_dst = os.path.join(bundle_dir, BPE_FILE)
    if os.path.abspath(bpe_vocab) != os.path.abspath(bpe_dst):
        _atomic_write(bpe_dst, lambda tmp: shutil.copyfile(bpe_vocab, tmp))
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
        ei = (ours_i(x, t) - ref.image_embeddings(x, t)).abs().max().item()
        et = (ours_t(tok, ln) - ref.text_embeddings(prompts)).abs().max().item()
    print(f"vs glide_text2im: image max err {ei:.3g}, text max err {et:.3g}", file=sys.stderr)
    if not (ei < 1e-5 and et < 1e-5):
        raise SystemExit("differs from glide_text2im's CLIP")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-enc", required=True, help="GLIDE clip_image_enc.pt")
    ap.add_argument("--text-enc", required=True, help="GLIDE clip_text_enc.pt")
    ap.add_argument("--bundle", required=True, help="bundle folder to write into")
    ap.add_argument("--bpe-vocab", help="bpe_simple_vocab_16e6.txt.gz (default: glide_text2im's)")
    ap.add_argument("--device", default="cpu", help="device to trace on (default cpu)")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                    help="weight/compute dtype (default float32, what GLIDE computes in)")
    ap.add_argument("--config", help="GLIDE clip config (yaml/json); default GLIDE's config.yaml")
    ap.add_argument("--compare-glide", action="store_true",
                    help="also check against an installed glide_text2im (slow)")
    args = ap.parse_args()

    cfg = load_config(args.config)
    bpe = find_bpe_vocab(args.bpe_vocab)
    image_sd, text_sd = load_state_dict(args.image_enc), load_state_dict(args.text_enc)
    image_enc, text_enc = build_encoders(cfg, image_sd, text_sd)
    if args.compare_glide:
        compare_with_glide(image_enc, text_enc, image_sd, text_sd, bpe, cfg)
    clip = export_clip(image_enc, text_enc, cfg, args.bundle, bpe, args.device, args.dtype,
                       log=lambda s: print(s, file=sys.stderr))
    clip["source"] = "openai/glide-text2im clip/image-enc + clip/text-enc"
    record_in_manifest(args.bundle, clip, log=lambda s: print(s, file=sys.stderr))
    print(json.dumps({"clip": clip}, indent=2))


if __name__ == "__main__":
    main()

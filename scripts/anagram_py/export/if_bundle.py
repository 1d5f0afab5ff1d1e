"""Phase 6 of the IF export: the manifest (docs/bundle.md, schema 2) and the bundle folder,
written beside OUTDIR, checked, then renamed into place; parts of an existing bundle that this
export does not write are kept."""
import json
import os
import shutil
import tempfile

import torch

from .. import manifest as bm
from .if_common import STAGE2_FILE, TEXT_TOKENS, log


def jsonable(value):
    """Config values as plain JSON types (tuples -> lists, paths -> str)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    return str(value)


def _unet_config(unet):
    config = json.loads(unet.to_json_string())
    config.pop("_name_or_path", None)
    return jsonable(config)


def _scheduler_entry(config, what):
    missing = [k for k in bm.SCHEDULER_KEYS if k not in config]
    if missing:
        raise SystemExit(f"error: {what} config lacks {missing}")
    return {k: jsonable(config[k]) for k in bm.SCHEDULER_KEYS}


def stage1_entry(unet, scheduler_config, layers, attention_resolution):
    """stages[0] of the manifest: image, unet (with its attention capture), scheduler."""
    return {
        "stage": 1,
        "image": {"size": int(unet.config.sample_size), "channels": 3},
        "unet": {
            "file": "unet.pt",
            "in_channels": int(unet.config.in_channels),
            "out_channels": int(unet.config.out_channels),
            "cross_attention_dim": int(unet.config.cross_attention_dim),
            "attention": {
                "query_resolution": attention_resolution,
                "num_layers": len(layers),
                "text_tokens": TEXT_TOKENS,
                "layers": layers,
            },
            "config": _unet_config(unet),
        },
        "scheduler": _scheduler_entry(scheduler_config, "stage I scheduler"),
    }


def stage2_entry(unet, scheduler_config, noising_config, noise_level):
    """stages[1]: image, unet (noise level as class labels), both schedulers, noise level."""
    return {
        "stage": 2,
        "image": {"size": int(unet.config.sample_size), "channels": 3},
        "unet": {
            "file": STAGE2_FILE,
            "in_channels": int(unet.config.in_channels),
            "out_channels": int(unet.config.out_channels),
            "cross_attention_dim": int(unet.config.cross_attention_dim),
            "class_labels": "noise_level",
            "config": _unet_config(unet),
        },
        "scheduler": _scheduler_entry(scheduler_config, "stage II scheduler"),
        "noising_scheduler": _scheduler_entry(noising_config, "stage II image_noising_scheduler"),
        "default_noise_level": int(noise_level),
    }


def build_manifest(args, unet, text_encoder, spiece_path, scheduler_config, layers, stage2):
    """The schema 2 manifest of an export (args: if_cli's options; stage2: (unet, scheduler
    config, noising scheduler config) or None); "files" is added by write_bundle."""
    import diffusers
    import sentencepiece as spm
    import transformers

    sp = spm.SentencePieceProcessor(model_file=spiece_path)
    if sp.pad_id() != 0 or sp.eos_id() != 1:
        raise SystemExit(f"error: {spiece_path} does not follow T5 conventions "
                         f"(pad {sp.pad_id()}, eos {sp.eos_id()}; expected 0 and 1)")
    te_config = text_encoder.config.to_dict()
    te_config.pop("_name_or_path", None)
    stages = [stage1_entry(unet, scheduler_config, layers, args.attention_resolution)]
    if stage2 is not None:
        unet2, sched2, noising2 = stage2
        stages.append(stage2_entry(unet2, sched2, noising2, args.noise_level))
    source = {"model": args.source_name or args.source}
    if stage2 is not None:
        source["stage2_model"] = args.stage2_source_name or args.stage2_source
    source["exported_with"] = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                               "transformers": transformers.__version__}
    return {
        "format": bm.FORMAT,
        "schema_version": bm.SCHEMA_VERSION,
        "name": args.name,
        "description": args.description,
        "dtype": args.dtype,
        "text_encoder": {
            "file": "text_encoder.pt",
            "hidden_size": int(text_encoder.config.d_model),
            "config": jsonable(te_config),
        },
        "tokenizer": {"file": "spiece.model", "max_length": TEXT_TOKENS,
                      "pad_id": sp.pad_id(), "eos_id": sp.eos_id()},
        "stages": stages,
        "source": source,
    }


def keep_other_parts(outdir, tmp, manifest, keep_stage2=True):
    """Carry over what an existing bundle (schema 1 or 2) holds beyond this export.

    Optional parts written by other tools (e.g. the noise-aware CLIP's "clip" object and
    its files) survive a re-export: top-level manifest keys this exporter does not write
    are kept, and so are files it does not write. An existing stage II is kept when this
    export has none, unless keep_stage2 is False or its text width / dtype no longer fit.
    """
    if not os.path.isfile(os.path.join(outdir, bm.MANIFEST)):
        return manifest
    old = bm.load(outdir)
    manifest = dict(manifest)
    for key, value in old.items():
        if key in manifest or key.startswith("_") or key in ("files", "stages") or \
                key in bm.V1_STAGE_KEYS:
            continue
        manifest[key] = value
        log(f"  keeping manifest entry '{key}' of the existing bundle")
    dropped = set()
    old2 = bm.stage(old, 2)
    if old2 is not None and bm.stage(manifest, 2) is None:
        width = old2["unet"]["config"].get("encoder_hid_dim") or \
            old2["unet"]["config"].get("cross_attention_dim")
        reason = None
        if not keep_stage2:
            reason = "--no-stage2"
        elif width != manifest["text_encoder"]["hidden_size"]:
            reason = (f"it takes {width}-d text states, the new text encoder gives "
                      f"{manifest['text_encoder']['hidden_size']}")
        elif old.get("dtype") != manifest["dtype"]:
            reason = f"it is {old.get('dtype')}, this export {manifest['dtype']}"
        if reason is None:
            manifest["stages"] = manifest["stages"] + [old2]
            if "stage2_model" in old.get("source", {}):
                src = manifest["source"]
                manifest["source"] = {"model": src["model"],
                                      "stage2_model": old["source"]["stage2_model"],
                                      "exported_with": src["exported_with"]}
            log(f"  keeping the existing stage II ({old2['unet']['file']})")
        else:
            dropped.add(old2["unet"]["file"])
            log(f"  dropping the existing stage II: {reason}")
    for name in sorted(os.listdir(outdir)):
        src, dst = os.path.join(outdir, name), os.path.join(tmp, name)
        if name in dropped or name == bm.MANIFEST or name.startswith("."):
            continue
        if not os.path.exists(dst) and os.path.isfile(src):
            shutil.copy2(src, dst)
            log(f"  keeping file {name} of the existing bundle")
        elif not os.path.exists(dst) and os.path.isdir(src):  # e.g. stage3/ (docs/stage3.md)
            shutil.copytree(src, dst)
            log(f"  keeping folder {name} of the existing bundle")
    return manifest


def write_bundle(outdir, files, manifest, verify, keep_stage2=True):
    """Write into a temporary sibling folder, verify it, then rename it into place.

    files: {bundle file name: callable(path) writing it}. Parts of an existing bundle at
    OUTDIR that this exporter does not write are kept (keep_other_parts). The manifest's
    "files" object gets the sha256 and size of every file it names."""
    outdir = os.path.abspath(outdir)
    if os.path.exists(outdir) and os.listdir(outdir) and \
            not os.path.isfile(os.path.join(outdir, bm.MANIFEST)):
        raise SystemExit(f"error: {outdir} exists and is not a bundle; not replacing it")
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        for name, write in files.items():
            write(os.path.join(tmp, name))
        manifest = keep_other_parts(outdir, tmp, manifest, keep_stage2)
        manifest["files"] = bm.file_entries(tmp, manifest)
        bm.write(tmp, manifest)
        problems = bm.check_files(tmp, bm.load(tmp))
        if problems:
            raise SystemExit("error: written bundle fails its own file check: " + "; ".join(problems))
        verify(tmp)
        old = None
        if os.path.exists(outdir):
            old = tempfile.mkdtemp(prefix=".old-bundle-", dir=parent)
            os.rename(outdir, os.path.join(old, "b"))
        os.rename(tmp, outdir)
        if old:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name in sorted(os.listdir(outdir)):
        log(f"  {name}: {os.path.getsize(os.path.join(outdir, name))} bytes")
    return manifest

"""The bundle manifest (docs/bundle.md): schema version 2, reading version 1, file hashes.

Shared by the exporters, the tiny-model builders, the golden generators and check_bundle.py.
Needs only the standard library.

    m = load(bundle)               # any schema version, returned in the version 2 shape
    s1 = stage(m, 1)               # {"stage": 1, "image": ..., "unet": ..., "scheduler": ...}
    s2 = stage(m, 2)               # None when the bundle has no stage II
    m["files"] = file_entries(bundle, m)   # {"unet.pt": {"sha256": ..., "bytes": ...}, ...}
    write(bundle, m)               # manifest.json via a temporary file and a rename
"""
import copy
import hashlib
import json
import os

from .files import atomic_write_text

FORMAT = "anagram-bundle"
SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
TEXT_TOKENS = 77

# diffusers DDPMScheduler config keys the bundle records (each stage's "scheduler" and
# stage II's "noising_scheduler").
SCHEDULER_KEYS = ["num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                  "variance_type", "prediction_type", "clip_sample", "clip_sample_range",
                  "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
                  "timestep_spacing", "steps_offset"]

# Top-level keys of a version 1 manifest that version 2 moved into stages[0].
V1_STAGE_KEYS = ("stage", "image", "unet", "scheduler")


def read_raw(bundle):
    with open(os.path.join(bundle, MANIFEST)) as f:
        return json.load(f)


def v1_to_v2(m):
    """A version 1 manifest in the version 2 shape (a new dict; "files" left out).

    v1 `stage`, `image`, `unet`, `scheduler` become stages[0]; everything else stays."""
    out = {k: copy.deepcopy(v) for k, v in m.items() if k not in V1_STAGE_KEYS}
    out["schema_version"] = SCHEMA_VERSION
    out["stages"] = [{"stage": m.get("stage", 1), "image": copy.deepcopy(m["image"]),
                      "unet": copy.deepcopy(m["unet"]),
                      "scheduler": copy.deepcopy(m["scheduler"])}]
    return out


def load(bundle):
    """manifest.json of BUNDLE in the version 2 shape, whatever its schema version.

    The original version is kept as m["_read_schema_version"] (not written back)."""
    raw = read_raw(bundle)
    version = raw.get("schema_version")
    if raw.get("format") != FORMAT:
        raise ValueError(f"{bundle}: not an {FORMAT} manifest (format {raw.get('format')!r})")
    if version == 1:
        m = v1_to_v2(raw)
    elif version == 2:
        m = copy.deepcopy(raw)
    else:
        raise ValueError(f"{bundle}: unsupported schema_version {version!r}")
    m["_read_schema_version"] = version
    return m


def stage(m, number):
    """The stages[] entry with "stage" == number, or None."""
    for s in m.get("stages", []):
        if s.get("stage") == number:
            return s
    return None


def named_files(m):
    """Every file a manifest key names, in a stable order (the keys of "files")."""
    names = []

    def add(name):
        if isinstance(name, str) and name and name not in names:
            names.append(name)

    for s in m.get("stages", []):
        add(s.get("unet", {}).get("file"))
    add(m.get("text_encoder", {}).get("file"))
    add(m.get("tokenizer", {}).get("file"))
    clip = m.get("clip")
    if isinstance(clip, dict):
        for key in ("image_encoder", "text_encoder", "bpe_vocab"):
            add(clip.get(key))
    stage3 = m.get("stage3")  # optional, docs/stage3.md (the C++ program does not read it yet)
    if isinstance(stage3, dict):
        for key in ("unet", "text_encoder", "vae_decoder"):
            add(stage3.get(key, {}).get("file"))
        add(stage3.get("tokenizer", {}).get("bpe_vocab"))
    return names


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_entry(path):
    return {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def file_entries(bundle, m, only=None, previous=None):
    """The "files" object: sha256 and size of every file named by a manifest key.

    only: recompute just these names and take the other entries from `previous`
    (an existing "files" object) when they are there; a named file missing from both
    is hashed anyway. Raises FileNotFoundError for a named file that does not exist."""
    previous = previous or {}
    out = {}
    for name in named_files(m):
        if only is not None and name not in only and name in previous:
            out[name] = dict(previous[name])
            continue
        path = os.path.join(bundle, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: named by the manifest but missing")
        out[name] = file_entry(path)
    return out


def check_files(bundle, m):
    """Problems with m["files"] against the folder: list of strings (empty when fine)."""
    problems = []
    files = m.get("files")
    if not isinstance(files, dict):
        return ["manifest has no \"files\" object"]
    for name in named_files(m):
        entry = files.get(name)
        path = os.path.join(bundle, name)
        if entry is None:
            problems.append(f"files has no entry for {name}")
        elif not os.path.isfile(path):
            problems.append(f"{name} is missing")
        else:
            got = file_entry(path)
            if got != {"sha256": entry.get("sha256"), "bytes": entry.get("bytes")}:
                problems.append(f"{name}: sha256/bytes differ from the manifest")
    return problems


def ordered(m):
    """Version 2 key order for writing (unknown keys after the known ones, "source" last)."""
    order = ["format", "schema_version", "name", "description", "dtype", "text_encoder",
             "tokenizer", "clip", "stages", "files"]
    out = {k: m[k] for k in order if k in m}
    for k, v in m.items():
        if k not in out and k != "source" and not k.startswith("_"):
            out[k] = v
    if "source" in m:
        out["source"] = m["source"]
    return out


def dumps(m):
    return json.dumps(ordered(m), indent=2) + "\n"


def write(bundle, m):
    """Write BUNDLE/manifest.json atomically (temporary file in the folder + rename)."""
    atomic_write_text(os.path.join(bundle, MANIFEST), dumps(m), prefix=".manifest.")

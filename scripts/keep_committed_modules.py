#!/usr/bin/env python3
"""After rebuilding a committed bundle, keep the committed TorchScript files that did not change.

Usage: .venv/bin/python scripts/keep_committed_modules.py [BUNDLE]   (default models/tiny-if)

A TorchScript archive carries debug pickles with the exporting script's path and line
numbers, so re-exporting the same weights from another checkout, or after editing the
exporter, changes the file's bytes but nothing it computes. For every *.pt file of BUNDLE
that git tracks: when the rebuilt archive equals the committed one in every entry except
the *.debug_pkl ones (same code, same constants, same weights), the committed bytes are
put back. Then the manifest's "files" hashes are recomputed. Prints what it kept.
"""
import os
import subprocess
import sys
import zipfile
import io

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundle_manifest as bm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def same_module(a_bytes, b_path):
    """True when two TorchScript archives differ at most in their *.debug_pkl entries."""
    try:
        a = zipfile.ZipFile(io.BytesIO(a_bytes))
        b = zipfile.ZipFile(b_path)
    except zipfile.BadZipFile:
        return False
    names_a = [n.split("/", 1)[-1] for n in a.namelist()]
    names_b = [n.split("/", 1)[-1] for n in b.namelist()]
    if sorted(names_a) != sorted(names_b):
        return False
    by_a = dict(zip(names_a, a.namelist()))
    by_b = dict(zip(names_b, b.namelist()))
    return all(n.endswith(".debug_pkl") or a.read(by_a[n]) == b.read(by_b[n]) for n in names_a)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    bundle = os.path.abspath(argv[0] if argv else os.path.join(ROOT, "models", "tiny-if"))
    rel = os.path.relpath(bundle, ROOT)
    for name in sorted(os.listdir(bundle)):
        if not name.endswith(".pt"):
            continue
        try:
            committed = subprocess.run(["git", "-C", ROOT, "show", f"HEAD:{rel}/{name}"],
                                       check=True, capture_output=True).stdout
        except subprocess.CalledProcessError:
            continue  # not tracked (new file)
        path = os.path.join(bundle, name)
        with open(path, "rb") as f:
            if f.read() == committed:
                continue
        if same_module(committed, path):
            with open(path, "wb") as f:
                f.write(committed)
            print(f"kept the committed {rel}/{name} (only debug info differed)")
        else:
            print(f"{rel}/{name} changed")
    raw = bm.read_raw(bundle)
    if raw.get("schema_version", 1) >= 2:
        raw["files"] = bm.file_entries(bundle, raw)
        bm.write(bundle, raw)
        problems = bm.check_files(bundle, raw)
        if problems:
            raise SystemExit("; ".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())

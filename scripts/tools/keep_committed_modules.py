#!/usr/bin/env python3
"""After rebuilding committed TorchScript files, keep the committed ones that did not change.

Usage: .venv/bin/python scripts/tools/keep_committed_modules.py [FOLDER]
       (default models/tiny-if; also a folder of goldens such as tests/golden)

A TorchScript archive carries debug pickles with the exporting script's path and line
numbers, so re-exporting the same weights from another checkout, or after editing the
exporter, changes the file's bytes but nothing it computes. For every *.pt file of FOLDER
that git tracks: when the rebuilt archive equals the committed one in every entry except
the *.debug_pkl ones (same code, same constants, same weights), the committed bytes are
put back. Then, in a bundle (schema 2 manifest.json), the manifest's "files" hashes are
recomputed. Prints what it kept and what changed; so after regenerating goldens,
`git diff --stat tests/golden` names only goldens whose values changed.
"""
import io
import os
import subprocess
import sys
import zipfile

from anagram_py import manifest as bm
from anagram_py.paths import ROOT, TINY_BUNDLE


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
    bundle = os.path.abspath(argv[0] if argv else TINY_BUNDLE)
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
    if not os.path.isfile(os.path.join(bundle, bm.MANIFEST)):
        return 0  # not a bundle (e.g. tests/golden): no hashes to update
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

"""The --data choice of the demo commands: which data module (pictures and captions) they use."""
import importlib

DATA = ("glyphs", "objects")


def data_module(name):
    """The data module of --data NAME: anagram_py.demo.glyphs or anagram_py.demo.objects."""
    if name not in DATA:
        raise SystemExit(f"unknown --data {name!r} (glyphs or objects)")
    return importlib.import_module(f"{__package__}.{name}")

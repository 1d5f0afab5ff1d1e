"""TRANSITIONAL: moved to scripts/anagram_py/manifest.py. This module re-exports it for the demo
scripts, which may import it from here until they move into the package; then it goes."""
from anagram_py.manifest import *  # noqa: F401,F403

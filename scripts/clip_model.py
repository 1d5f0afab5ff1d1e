"""TRANSITIONAL: moved to scripts/anagram_py/glide_clip.py. This module re-exports it for the demo
scripts (train_demo_clip.py), which import it from here until they move into the package; then
it goes."""
from anagram_py.glide_clip import *  # noqa: F401,F403

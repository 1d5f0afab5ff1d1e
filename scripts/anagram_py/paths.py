"""Paths inside the repository checkout this package belongs to (scripts/anagram_py/)."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_BUNDLE = os.path.join(ROOT, "models", "tiny-if")
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")

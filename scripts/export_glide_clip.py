"""TRANSITIONAL: moved to scripts/export/export_glide_clip.py (command) and
scripts/anagram_py/export/glide_clip.py (export_clip, record_in_manifest, ...). The demo scripts
(train_demo_clip.py) import it from here, and run as a script it runs the command, until they
move into the package; then it goes."""
import os
import runpy

from anagram_py.export.glide_clip import *  # noqa: F401,F403

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "export",
                                "export_glide_clip.py"), run_name="__main__")

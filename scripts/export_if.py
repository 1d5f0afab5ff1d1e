"""TRANSITIONAL: moved to scripts/export/export_if.py (command), scripts/anagram_py/export/if_*.py
and scripts/anagram_py/if_configs.py. scripts/make_demo_bundle.sh and tests/test_train_demo.sh
run it from here, and the demo scripts may import it, until they move into the package; then it
goes."""
import os
import runpy

from anagram_py import if_configs as _configs
from anagram_py.export.if_attention import *  # noqa: F401,F403
from anagram_py.export.if_common import *  # noqa: F401,F403
from anagram_py.export.if_sources import *  # noqa: F401,F403
from anagram_py.if_configs import (RANDOM_INIT_SOURCE, RANDOM_INIT_STAGE1,  # noqa: F401
                                   RANDOM_INIT_STAGE2)

IF_STAGE1_SCHEDULER = _configs.STAGE1_SCHEDULER
IF_STAGE2_SCHEDULER = _configs.STAGE2_SCHEDULER
IF_STAGE2_NOISING_SCHEDULER = _configs.STAGE2_NOISING_SCHEDULER
T5_XXL_CONFIG = _configs.T5_XXL

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "export",
                                "export_if.py"), run_name="__main__")

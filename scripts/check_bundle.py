"""TRANSITIONAL: moved to scripts/tools/check_bundle.py; tests/test_train_demo.sh runs it from
here until the demo scripts move into the package, then this goes."""
import os
import runpy

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools",
                                "check_bundle.py"), run_name="__main__")

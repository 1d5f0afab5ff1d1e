#!/usr/bin/env bash
# Unit tests of the scripts' Python package (scripts/anagram_py): tests/python/test_*.py with
# unittest, on the CPU (no GPU needed: the CUDA branches are tested through device names).
# Usage: tests/python_unit.sh      (needs .venv: scripts/setup_python.sh; PYTHON=... overrides)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
# ctest counts exit 77 as skipped: no Python set-up here (scripts/setup_python.sh makes it).
"$py" -c "import torch" 2>/dev/null || { echo "skipped: $py with torch is missing"; exit 77; }
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$root/tests/python"
"$py" -m unittest discover -v -p 'test_*.py'

#!/usr/bin/env bash
# Create the Python environment the scripts/ tools use: .venv at the repository root.
#
# Needs the Debian packages python3-torch (torch 1.13, the same version as libtorch-dev,
# so the TorchScript files it writes load in the C++ program) and python3-venv; when
# /usr/bin/python3 cannot import torch or has no venv module, they are installed with
# apt-get (through sudo unless running as root).
# The venv sees the system site-packages (for torch) and adds the pinned packages of
# scripts/requirements.txt (diffusers, transformers, sentencepiece, ...) from PyPI, and the
# scripts' own package, scripts/anagram_py, as an editable install (scripts/pyproject.toml),
# so that `.venv/bin/python scripts/<group>/<script>.py` finds it (elsewhere: PYTHONPATH=scripts).
#
# Usage: scripts/setup_python.sh        (from anywhere; rerunning it is harmless)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py=/usr/bin/python3

missing=()
[ -x "$py" ] || missing+=(python3)
"$py" -c "import torch" 2>/dev/null || missing+=(python3-torch)
"$py" -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "installing Debian packages: ${missing[*]}" >&2
  ${sudo[@]+"${sudo[@]}"} apt-get update
  ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"
fi
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "error: $py still cannot import torch after installing python3-torch" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -r scripts/requirements.txt
.venv/bin/python -m pip install --no-deps --no-build-isolation -e scripts
.venv/bin/python -c "import torch, diffusers, transformers, sentencepiece, anagram_py; \
print('torch', torch.__version__, '| diffusers', diffusers.__version__, \
'| transformers', transformers.__version__, '| sentencepiece', sentencepiece.__version__)"

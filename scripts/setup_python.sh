#!/usr/bin/env bash
# Create the Python environment the scripts/ tools use: .venv at the repository root.
#
# Assumes the Debian packages python3-torch (torch 1.13, the same version as libtorch-dev,
# so the TorchScript files it writes load in the C++ program) and python3-venv are
# installed:   sudo apt-get install python3-torch python3-venv
# The venv sees the system site-packages (for torch) and adds the pinned packages of
# scripts/requirements.txt (diffusers, transformers, sentencepiece, ...) from PyPI.
#
# Usage: scripts/setup_python.sh        (from anywhere; rerunning it is harmless)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "error: /usr/bin/python3 cannot import torch; install Debian's python3-torch" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -r scripts/requirements.txt
.venv/bin/python -c "import torch, diffusers, transformers, sentencepiece; \
print('torch', torch.__version__, '| diffusers', diffusers.__version__, \
'| transformers', transformers.__version__, '| sentencepiece', sentencepiece.__version__)"

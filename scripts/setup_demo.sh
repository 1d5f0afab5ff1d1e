#!/usr/bin/env bash
# What the demo model's scripts need beyond scripts/setup_python.sh: the Debian font
# packages its pictures are rendered from (scripts/anagram_py/demo/glyphs.py: DejaVu,
# Liberation and FreeFont faces for the diffusion model and its CLIP, URW base35 faces held
# out for the judge) and Pillow in .venv (installed with diffusers already; checked here).
# Usage: scripts/setup_demo.sh        (rerunning it is harmless)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fonts=(fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35)
missing=()
for p in "${fonts[@]}"; do
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
PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -c "
from anagram_py.demo import glyphs as d
for f in d.TRAIN_FONTS + d.JUDGE_FONTS: d.font_path(f)
print('demo fonts: %d training, %d judge faces found' % (len(d.TRAIN_FONTS), len(d.JUDGE_FONTS)))"

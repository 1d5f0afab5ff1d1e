#!/usr/bin/env bash
# Installs anagram's build dependencies (Debian 12+/Ubuntu 23.04+ packages) and builds the
# program, build/anagram, and nothing else (scripts/test.sh builds the tests and the
# benchmark). Safe to re-run: packages already present are skipped, the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

# libopenblas0-pthread: Debian's LibTorch calls the BLAS it finds through the alternatives
# system; without OpenBLAS that is the reference BLAS, several times slower on the CPU.
# libwebp-dev, libav*-dev and libswscale-dev: `anagram animate` writes WebP and MP4 (optional).
# libpng-dev reads the pictures to score and animate; libfreetype-dev reads caption fonts
# (both are untrusted files: maintained readers that check what they read).
packages=(build-essential cmake libtorch-dev libopenblas0-pthread libcli11-dev
          nlohmann-json3-dev libspdlog-dev libstb-dev libgtest-dev zlib1g-dev libssl-dev
          libpng-dev libfreetype-dev
          libwebp-dev libavcodec-dev libavformat-dev libswscale-dev libavutil-dev
          fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build --target anagram -j"$(nproc)"
echo "setup: built build/anagram" >&2

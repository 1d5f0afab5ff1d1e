#!/usr/bin/env bash
# Collects, from this (Debian) machine's packages, the headers and libraries that a machine
# with only CUDA + PyTorch lacks, into .devdeps/ (git-ignored): header-only
# CLI11/nlohmann-json/spdlog/fmt/stb, zlib's, libpng's and FreeType's headers and libraries (with
# FreeType's own dependencies), nlohmann-json's CMake package and GoogleTest's sources (not with
# --no-gtest: scripts/gpu_check.sh builds no tests, and a device call carries at most 64 MiB).
# scripts/configure_pip_torch.sh uses them there.
# Usage: scripts/make_devdeps.sh [--no-gtest]
set -euo pipefail
cd "$(dirname "$0")/.."
d=.devdeps
rm -rf "$d"
mkdir -p "$d/include" "$d/lib" "$d/share/cmake"
cp -r /usr/include/CLI /usr/include/nlohmann /usr/include/spdlog /usr/include/fmt \
  /usr/include/stb "$d/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$d/include/"
cp -L /usr/lib/x86_64-linux-gnu/libz.so "$d/lib/libz.so"
cp /usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h "$d/include/"
cp -r /usr/include/freetype2 "$d/include/"
lib=/usr/lib/x86_64-linux-gnu
cp -L "$lib/libpng16.so" "$d/lib/libpng16.so"
cp -L "$lib/libpng16.so" "$d/lib/libpng16.so.16"
cp -L "$lib/libfreetype.so" "$d/lib/libfreetype.so"
cp -L "$lib/libfreetype.so" "$d/lib/libfreetype.so.6"
for so in libbrotlidec.so.1 libbrotlicommon.so.1; do cp -L "$lib/$so" "$d/lib/$so"; done
cp -r /usr/share/cmake/nlohmann_json "$d/share/cmake/"
[ "${1:-}" = --no-gtest ] || cp -r /usr/src/googletest "$d/googletest"
du -sh "$d"

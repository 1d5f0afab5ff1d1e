#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan) into build-fuzz/ and
# runs each for SECONDS (default 30), starting from seed inputs made from the default bundle.
# Exits non-zero when a harness finds a crash (its input is kept in build-fuzz/crashes/).
# Usage: scripts/fuzz.sh [SECONDS] [HARNESS...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang); skipped" >&2
  exit 0
fi
CXX=clang++ cmake -S tests/fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] ||
  harnesses=(manifest sentencepiece t5_tokenizer clip_tokenizer bpe_vocab archive_code png font)

# Seeds: the default bundle's own files and a few prompts.
seeds=build-fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{manifest,sentencepiece,t5_tokenizer,clip_tokenizer,bpe_vocab} build-fuzz/crashes
mkdir -p "$seeds"/{archive_code,png,font}
cp models/tiny-if/manifest.json "$seeds/manifest/"
cp models/tiny-if/spiece.model "$seeds/sentencepiece/"
(gzip -dc models/tiny-if/bpe_simple_vocab_16e6.txt.gz || true) | head -c 200000 >"$seeds/bpe_vocab/head"
# The code files of the bundled models' archives (zip files: Python's zipfile reads them).
python3 - "$seeds/archive_code" models/tiny-if/*.pt models/tiny-clip-scorer/*.pt <<'PY' || true
import hashlib, sys, zipfile
for archive in sys.argv[2:]:
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            if name.endswith(".py"):
                code = z.read(name)[:60000]
                open(f"{sys.argv[1]}/{hashlib.md5(code).hexdigest()[:12]}", "wb").write(code)
PY
# Small PNGs from the program itself are made by the tests; here the docs' pictures (cut to the
# harness's input limit: their headers and first chunks) and a font's first 64 KiB.
for f in docs/*.png; do head -c 65536 "$f" >"$seeds/png/$(basename "$f")"; done
python3 - "$seeds/png" <<'PY' || true
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
for name, (colour, channels, palette) in {"rgb": (2, 3, b""), "grey": (0, 1, b""),
                                           "rgba": (6, 4, b""), "palette": (3, 1, bytes(range(48)))}.items():
    rows = b"".join(b"\0" + bytes((x * 7 + y) % 16 for x in range(8 * channels)) for y in range(8))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, colour, 0, 0, 0))
    if palette:
        png += chunk(b"PLTE", palette)
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    open(f"{sys.argv[1]}/{name}.png", "wb").write(png)
PY
for f in /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf; do
  [ -f "$f" ] && head -c 65536 "$f" >"$seeds/font/$(basename "$f")"
done
for text in "a photo of a dog" "An Oil Painting of a CAT" "caf\u00e9 na\u00efve <extra_id_0>" \
  "a<extra_id_1>b </s> <pad>" "\u0130stanbul \u03a3\u03a3" "hello!!! 123 it's"; do
  printf '%b' "$text" >"$seeds/t5_tokenizer/$(printf '%s' "$text" | md5sum | cut -c1-8)"
  printf '%b' "$text" >"$seeds/clip_tokenizer/$(printf '%s' "$text" | md5sum | cut -c1-8)"
done

status=0
for h in "${harnesses[@]}"; do
  echo "fuzz: $h for ${seconds}s" >&2
  corpus=build-fuzz/corpus/$h
  mkdir -p "$corpus"
  if ! ASAN_OPTIONS=detect_leaks=0 build-fuzz/fuzz_"$h" -max_total_time="$seconds" \
    -max_len=65536 -timeout=10 -rss_limit_mb=4096 -artifact_prefix=build-fuzz/crashes/"$h"- \
    -print_final_stats=1 "$corpus" "$seeds/$h" 2>build-fuzz/"$h".log; then
    echo "fuzz: $h FAILED (see build-fuzz/$h.log and build-fuzz/crashes/)" >&2
    tail -30 build-fuzz/"$h".log >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" build-fuzz/"$h".log | tail -1 >&2 || true
  fi
done
exit $status

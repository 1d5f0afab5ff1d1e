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
[ ${#harnesses[@]} -gt 0 ] || harnesses=(manifest sentencepiece t5_tokenizer clip_tokenizer bpe_vocab)

# Seeds: the default bundle's own files and a few prompts.
seeds=build-fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{manifest,sentencepiece,t5_tokenizer,clip_tokenizer,bpe_vocab} build-fuzz/crashes
cp models/tiny-if/manifest.json "$seeds/manifest/"
cp models/tiny-if/spiece.model "$seeds/sentencepiece/"
(gzip -dc models/tiny-if/bpe_simple_vocab_16e6.txt.gz || true) | head -c 200000 >"$seeds/bpe_vocab/head"
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

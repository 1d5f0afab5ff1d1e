#!/usr/bin/env bash
# Batch throughput: N samples made by one `anagram batch` (models loaded once) against N runs
# of `anagram gen` (models loaded every time), on a bundle (default: the bundled tiny model).
# Prints samples per minute of each and their ratio, measured back to back in one run.
# Usage: scripts/bench_batch.sh [N] [STEPS] [BUNDLE] [STAGES]
# The ratio grows with the share of a run spent loading: small on the tiny bundle with both
# stages at 5 steps, large for DeepFloyd IF (tens of seconds to load and hash the files).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
steps=${2:-5}
bundle=${3:-models/tiny-if}
stages=${4:-0}
[ -x build/anagram ] || scripts/setup.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$n"); do
  printf '{"prompts": ["a dog", "a cat"], "views": ["rot180"], "seeds": [%d], "out": "b"}\n' "$i"
done >"$work/jobs.jsonl"
now() { date +%s.%N; }
start=$(now)
build/anagram batch "$work/jobs.jsonl" --bundle "$bundle" --set steps="$steps" --set stages="$stages" --out "$work/batch" -q >/dev/null
batch_s=$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')
start=$(now)
for i in $(seq 1 "$n"); do
  build/anagram gen --bundle "$bundle" -p "a dog" -p "a cat" --view rot180 --seed "$i" \
    --steps "$steps" --stages "$stages" --out "$work/gen" -q >/dev/null
done
gen_s=$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')
echo "samples: $n, steps per stage: $steps, stages: $stages (0: all), bundle: $bundle"
awk -v n="$n" -v b="$batch_s" -v g="$gen_s" 'BEGIN {
  printf "batch:              %6.1f s  %6.2f samples/min\n", b, n * 60 / b
  printf "one gen per sample: %6.1f s  %6.2f samples/min\n", g, n * 60 / g
  printf "batch / gen throughput: %.2fx\n", g / b
}'

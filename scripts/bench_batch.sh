#!/usr/bin/env bash
# Batch throughput: N samples made by `anagram batch` (models loaded once; one worker, then
# WORKERS samples at once) against N runs of `anagram gen` (models loaded every time), on a
# bundle (default: the bundled tiny model). Prints samples per minute of each and the ratios,
# measured back to back in one run.
# Usage: scripts/bench_batch.sh [N] [STEPS] [BUNDLE] [STAGES] [WORKERS]
# ANAGRAM=path picks the binary (default build/anagram). WORKERS defaults to the number of cores. On the CPU one sample keeps about one core busy
# (LibTorch's and OpenBLAS's pools help little at these sizes), so workers are what fills the
# machine; on a GPU they overlap one sample's host work with another's kernels. The load-once
# gain grows with the share of a run spent loading: small for the bundled models, large for
# DeepFloyd IF (tens of seconds to load and hash the files).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
steps=${2:-5}
bundle=${3:-models/tiny-if}
stages=${4:-0}
workers=${5:-$(nproc)}
bin=${ANAGRAM:-build/anagram}
[ -x "$bin" ] || scripts/setup.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$n"); do
  printf '{"prompts": ["a dog", "a cat"], "views": ["rot180"], "seeds": [%d], "out": "b"}\n' "$i"
done >"$work/jobs.jsonl"
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { print a - b }'; }
batch() {
  "$bin" batch "$work/jobs.jsonl" --bundle "$bundle" --set steps="$steps" \
    --set stages="$stages" --workers "$1" --out "$work/batch-$1" -q >/dev/null
}
start=$(now)
batch 1
one_s=$(since "$start")
start=$(now)
batch "$workers"
many_s=$(since "$start")
start=$(now)
for i in $(seq 1 "$n"); do
  "$bin" gen --bundle "$bundle" -p "a dog" -p "a cat" --view rot180 --seed "$i" \
    --steps "$steps" --stages "$stages" --out "$work/gen" -q >/dev/null
done
gen_s=$(since "$start")
echo "samples: $n, steps per stage: $steps, stages: $stages (0: all), bundle: $bundle, cores: $(nproc)"
awk -v n="$n" -v o="$one_s" -v m="$many_s" -v g="$gen_s" -v w="$workers" 'BEGIN {
  printf "batch, 1 worker:     %6.1f s  %6.2f samples/min\n", o, n * 60 / o
  printf "batch, %d workers:    %6.1f s  %6.2f samples/min\n", w, m, n * 60 / m
  printf "one gen per sample:  %6.1f s  %6.2f samples/min\n", g, n * 60 / g
  printf "batch (1 worker) / gen throughput:  %.2fx\n", g / o
  printf "batch (%d workers) / gen throughput: %.2fx\n", w, g / m
}'

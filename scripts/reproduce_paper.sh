#!/usr/bin/env bash
# Generates the papers' prompt pairs (examples/paper/*.jsonl) with `anagram batch` and scores
# them with `anagram score` into one table: per method, the mean and 0.9 quantile of alignment
# and concealment with 95% bootstrap intervals.
#
# Usage: scripts/reproduce_paper.sh --bundle BUNDLE --scorer SCORER [--out DIR]
#            [--jobs examples/paper/ablation.jsonl] [--samples N] [-- BATCH_ARGS...]
#   --samples N   samples per prompt pair and method (the files say 10, as the published runs)
#   BATCH_ARGS    passed to `anagram batch`, e.g. --device cuda or --set steps=10
# The batch is resumable: rerun the same command after an interruption. The table files in
# DIR (table.txt, summary.csv, scores.csv, scores.json) are rewritten on every run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${ANAGRAM:-$root/build/anagram}"
bundle="" scorer="" out="paper-run" jobs="$root/examples/paper/ablation.jsonl" samples=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=$2; shift 2 ;;
    --scorer) scorer=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "reproduce_paper: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$bundle" ] && [ -n "$scorer" ] || { echo "reproduce_paper: --bundle and --scorer are required" >&2; exit 2; }
[ -x "$bin" ] || { echo "reproduce_paper: no $bin (run scripts/setup.sh, or set ANAGRAM)" >&2; exit 2; }
case "$samples" in ''|*[!0-9]*) [ -z "$samples" ] || { echo "reproduce_paper: --samples takes a number" >&2; exit 2; } ;; esac

mkdir -p "$out"
job_file="$out/jobs.jsonl"
if [ -n "$samples" ]; then
  sed -E "s/\"num_samples\": *[0-9]+/\"num_samples\": $samples/" "$jobs" >"$job_file.new"
else
  cp "$jobs" "$job_file.new"
fi
if [ -e "$job_file" ] && ! cmp -s "$job_file" "$job_file.new"; then
  rm -f "$job_file.new"
  echo "reproduce_paper: $out already holds a run of other jobs; use another --out" >&2
  exit 2
fi
mv "$job_file.new" "$job_file"

start=$(date +%s)
"$bin" batch "$job_file" --bundle "$bundle" --out "$out/samples" "$@"
generated=$(date +%s)
"$bin" score "$out/samples" --scorer "$scorer" --force --csv "$out/scores.csv" \
  --summary-csv "$out/summary.csv" --json "$out/scores.json" | tee "$out/table.txt"
echo "reproduce_paper: generation $((generated - start)) s, scoring $(($(date +%s) - generated)) s; table in $out/table.txt" >&2

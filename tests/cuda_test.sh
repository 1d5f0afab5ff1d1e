#!/usr/bin/env bash
# The whole program on CUDA, end to end: gen (the method, the baseline, one stage, the text
# encoder on the CPU, a rerun from metadata), batch with two workers, and animate and score on
# the samples CUDA made. Skipped (exit 77) unless ANAGRAM_TEST_HAS_CUDA=1: CI has no GPU;
# scripts/gpu_check.sh runs it on a machine that has one.
# Usage: tests/cuda_test.sh ANAGRAM_BINARY TINY_BUNDLE SCORER_DIR
set -u
[ "${ANAGRAM_TEST_HAS_CUDA:-0}" = 1 ] || { echo "skipped: set ANAGRAM_TEST_HAS_CUDA=1 on a GPU machine"; exit 77; }
bin=$1
bundle=$2
scorer=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() {
  if eval "$2"; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; fi
}
# gen_ok NAME ARGS...: a gen on cuda writes one complete sample (metadata names the device).
gen_ok() {
  local name=$1
  shift
  "$bin" --quiet gen --bundle "$bundle" --device cuda --steps 3 --out "$work/$name" "$@" \
    >"$work/$name.stdout" 2>"$work/$name.stderr"
  local rc=$?
  check "gen $name (exit $rc: $(head -c 200 "$work/$name.stderr"))" \
    "[ $rc -eq 0 ] && [ -f '$work/$name/sample_000/anagram.png' ] && \
     grep -q '\"device\": \"cuda' '$work/$name/sample_000/metadata.json'"
}

gen_ok method -p dog -p cat --view rot180 --save-attention --stages 3 --stage3-steps 2
gen_ok baseline -p dog -p cat -p horse --view rot180 --view flip --method baseline --stages 2
gen_ok stage1 -p dog -p cat --view rot90 --stages 1 --no-balance --no-antiseg
gen_ok text_cpu -p dog -p cat --view rot180 --text-device cpu --stages 2
check "three stages' files" "[ -f '$work/method/sample_000/anagram_64.png' ] && \
  [ -f '$work/method/sample_000/anagram_256.png' ] && \
  [ -f '$work/method/sample_000/view_1_rotate_180_cat.png' ]"
check "attention maps" "ls '$work/method/sample_000' | grep -q '^attention_step00_'"

"$bin" --quiet gen --from-metadata "$work/method/sample_000/metadata.json" --out "$work/rerun" \
  >/dev/null 2>"$work/rerun.stderr"
check "rerun from metadata on cuda" "[ -f '$work/rerun/sample_000/anagram.png' ]"

printf '%s\n' '{"prompts": ["dog", "cat"], "views": ["rot180"], "seeds": [0, 1, 2, 3], "steps": 2, "stages": 2}' \
  >"$work/jobs.jsonl"
"$bin" --quiet batch "$work/jobs.jsonl" --bundle "$bundle" --device cuda -j 2 --out "$work/batch" \
  >/dev/null 2>"$work/batch.stderr"
rc=$?
check "batch -j 2 on cuda writes every sample (exit $rc)" \
  "[ $rc -eq 0 ] && [ \$(ls -d '$work'/batch/job_1/seed_* | wc -l) -eq 4 ]"

"$bin" --quiet animate "$work/method/sample_000" --out "$work/anim.webp" >/dev/null 2>&1 ||
  "$bin" --quiet animate "$work/method/sample_000" --png-frames "$work/frames" >/dev/null 2>&1
check "animate a CUDA-made sample" "[ -s '$work/anim.webp' ] || [ -d '$work/frames' ]"
"$bin" --quiet score "$work/method" "$work/baseline" --scorer "$scorer" --device cuda \
  --csv "$work/scores.csv" >/dev/null 2>"$work/score.stderr"
check "score CUDA-made samples on cuda" "[ -s '$work/scores.csv' ]"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

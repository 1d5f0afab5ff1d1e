#!/usr/bin/env bash
# End-to-end tests of `anagram batch` on the bundled model: a 20-line job file killed with
# SIGKILL mid-run reruns to completion with every sample once and no partial file; two shards
# make the same files as one run; invalid lines run nothing; a failing job does not stop the rest;
# `anagram score` writes its table for the outputs.
# Usage: batch_test.sh ANAGRAM_BINARY BUNDLE_DIR SCORER_DIR
set -u
bin=$1
bundle=$2
scorer=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() { if eval "$2"; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; fi; }

jobs="$work/jobs.jsonl"
for i in $(seq 1 20); do
  printf '{"prompts": ["a dog %d", "a cat"], "views": ["rot180"], "seeds": [%d], "out": "pair%d"}\n' \
    "$i" "$i" "$((i % 3))" >>"$jobs"
done
common=(--bundle "$bundle" --set steps=2 --set stages=1 -q)

# 1. Killed at some moment, rerun to completion.
"$bin" batch "$jobs" "${common[@]}" --out "$work/run" >"$work/first.out" 2>/dev/null &
pid=$!
for _ in $(seq 600); do
  [ "$(find "$work/run" -mindepth 2 -maxdepth 2 -name 'seed_*' 2>/dev/null | wc -l)" -ge 4 ] && break
  sleep 0.1
done
kill -KILL "$pid"
wait "$pid" 2>/dev/null
done_before=$(find "$work/run" -mindepth 2 -maxdepth 2 -name 'seed_*' | wc -l)
check "the killed run left only complete samples" \
  '[ "$done_before" -ge 4 ] && [ "$done_before" -lt 20 ] && [ -z "$(find "$work/run" -mindepth 2 -maxdepth 2 -name "seed_*" ! -exec test -s "{}/metadata.json" \; -print)" ]'
"$bin" batch "$jobs" "${common[@]}" --out "$work/run" >"$work/second.out" 2>"$work/second.err"
rc=$?
check "the rerun completes (exit 0)" '[ "$rc" -eq 0 ]'
check "every sample once" '[ "$(find "$work/run" -mindepth 2 -maxdepth 2 -name "seed_*" | wc -l)" -eq 20 ]'
check "no partial or temporary file left" '[ -z "$(find "$work/run" -name ".*")" ]'
check "the rerun skipped what was complete" 'grep -q "$done_before already complete" "$work/second.err"'
check "the rerun printed only the new samples" '[ "$(wc -l <"$work/second.out")" -eq $((20 - done_before)) ]'
check "summary has a line per sample and run" '[ "$(grep -c "\"status\":\"done\"" "$work/run/summary.jsonl")" -ge $((20 - done_before)) ] && [ "$(grep -c "\"status\":\"skipped\"" "$work/run/summary.jsonl")" -eq "$done_before" ]'
check "metadata records the job's seed" 'grep -q "\"seed\": 7" "$work/run/pair1/seed_000007/metadata.json"'

# 2. Two shards make the same files as one run.
head -6 "$jobs" >"$work/six.jsonl"
"$bin" batch "$work/six.jsonl" "${common[@]}" --out "$work/whole" >/dev/null 2>&1
"$bin" batch "$work/six.jsonl" "${common[@]}" --out "$work/sharded" --shard 0/2 >/dev/null 2>&1
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 "$bin" batch "$work/six.jsonl" "${common[@]}" --out "$work/sharded" >/dev/null 2>&1
same=1
for f in $(cd "$work/whole" && find . -name '*.png' | sort); do
  cmp -s "$work/whole/$f" "$work/sharded/$f" || same=0
done
check "two shards = one run" '[ "$same" -eq 1 ] && [ "$(cd "$work/whole" && find . -name "*.png" | wc -l)" -eq "$(cd "$work/sharded" && find . -name "*.png" | wc -l)" ] && [ -s "$work/sharded/summary.shard-1-of-2.jsonl" ]'

# 2b. Two workers make the same files as one worker on one thread, each sample once.
"$bin" batch "$work/six.jsonl" "${common[@]}" --threads 1 --out "$work/serial" >/dev/null 2>&1
"$bin" batch "$work/six.jsonl" "${common[@]}" --workers 2 --out "$work/par" >"$work/par.out" 2>/dev/null
rc=$?
same=1
for f in $(cd "$work/serial" && find . -name '*.png' | sort); do
  cmp -s "$work/serial/$f" "$work/par/$f" || same=0
done
check "--workers 2 exits 0 and prints each sample once" '[ "$rc" -eq 0 ] && [ "$(sort -u "$work/par.out" | wc -l)" -eq 6 ] && [ "$(wc -l <"$work/par.out")" -eq 6 ]'
check "--workers 2 = one worker on one thread" '[ "$same" -eq 1 ] && [ "$(cd "$work/serial" && find . -name "*.png" | wc -l)" -eq "$(cd "$work/par" && find . -name "*.png" | wc -l)" ] && [ "$(find "$work/par" -name "*.png" | wc -l)" -gt 0 ]'
check "each worker ran on one thread, as its metadata says" '[ -z "$(grep -L "\"intra_op_threads\": 1," "$work"/par/*/seed_*/metadata.json)" ]'
"$bin" batch "$work/six.jsonl" "${common[@]}" --workers 0 --out "$work/noworkers" >/dev/null 2>"$work/noworkers.err"
rc=$?
check "--workers 0: exit 2 naming it, nothing made" '[ "$rc" -eq 2 ] && grep -q "workers" "$work/noworkers.err" && [ ! -e "$work/noworkers" ]'

# 3. Invalid lines: line-numbered errors, nothing runs.
printf '%s\n' '{"prompts": ["a"]}' '{"prompts": ["a"], "steps": -1}' '{"prompts": ' >"$work/bad.jsonl"
"$bin" batch "$work/bad.jsonl" --bundle "$bundle" --out "$work/bad" >"$work/bad.out" 2>"$work/bad.err"
rc=$?
check "invalid lines exit 2" '[ "$rc" -eq 2 ]'
check "errors name line and field" 'grep -q "line 2: steps:" "$work/bad.err" && grep -q "line 3:" "$work/bad.err"'
check "nothing ran" '[ ! -e "$work/bad" ] && [ ! -s "$work/bad.out" ]'
"$bin" batch "$work/bad.jsonl" "${common[@]}" --out "$work/skip" --skip-invalid >/dev/null 2>&1
rc=$?
check "--skip-invalid runs the rest and exits 1" '[ "$rc" -eq 1 ] && [ -d "$work/skip/job_1/seed_000000" ]'

# 4. A failing job is reported; the others go on.
mkdir -p "$work/fail" && echo "not a folder" >"$work/fail/blocked"
printf '%s\n' '{"prompts": ["a"], "out": "blocked"}' '{"prompts": ["b"], "out": "fine"}' >"$work/fail.jsonl"
"$bin" batch "$work/fail.jsonl" "${common[@]}" --out "$work/fail" >/dev/null 2>"$work/fail.err"
rc=$?
check "a failing job gives exit 1" '[ "$rc" -eq 1 ]'
check "the other job ran" '[ -d "$work/fail/fine/seed_000000" ]'
check "the failure is in the summary" 'grep -q "\"status\":\"failed\"" "$work/fail/summary.jsonl"'
check "the user's file is untouched" '[ "$(cat "$work/fail/blocked")" = "not a folder" ]'

# 5. Scores of the outputs: table, CSV, JSON; the best per set; the user's files kept.
"$bin" score "$work/run" --scorer "$scorer" -q --csv "$work/scores.csv" --json "$work/scores.json" \
  --summary-csv "$work/summary.csv" >"$work/table.out" 2>"$work/score.err"
rc=$?
check "score exits 0" '[ "$rc" -eq 0 ]'
check "the table has the method row" 'grep -q "^mtl  *20 " "$work/table.out"'
check "one CSV row per sample" '[ "$(wc -l <"$work/scores.csv")" -eq 21 ] && [ "$(grep -c "/seed_0000" "$work/scores.csv")" -eq 20 ]'
check "summary and JSON written" '[ "$(wc -l <"$work/summary.csv")" -eq 2 ] && grep -q "\"concealment_q95\"" "$work/scores.json"'
echo "keep me" >"$work/mine.csv"
"$bin" score "$work/run" --scorer "$scorer" -q --csv "$work/mine.csv" >/dev/null 2>"$work/keep.err"
rc=$?
check "an existing output file is refused (exit 2) and kept" '[ "$rc" -eq 2 ] && [ "$(cat "$work/mine.csv")" = "keep me" ] && grep -q "force" "$work/keep.err"'
"$bin" score "$work/run" -q >/dev/null 2>"$work/noscorer.err"
rc=$?
check "no scorer: exit 2 with the way out" '[ "$rc" -eq 2 ] && grep -q "export_clip_scorer" "$work/noscorer.err"'
printf '%s\n' '{"prompts": ["a dog", "a cat"], "views": ["jigsaw"], "seeds": [0, 1, 2, 3], "out": "four"}' >"$work/four.jsonl"
"$bin" batch "$work/four.jsonl" "${common[@]}" --out "$work/four" >/dev/null 2>&1
"$bin" score "$work/four" --scorer "$scorer" -q --select 1 --csv "$work/four.csv" >"$work/best.out" 2>/dev/null
best=$(awk -F, 'NR > 1 { if ($7 > max || NR == 2) { max = $7; f = $1 } } END { print f }' "$work/four.csv")
check "--select 1 prints the sample of highest alignment" '[ "$(wc -l <"$work/best.out")" -eq 1 ] && [ "$(cat "$work/best.out")" = "$best" ]'
echo "garbage" >"$work/four/four/seed_000002/anagram.png"
"$bin" score "$work/four" --scorer "$scorer" -q >"$work/broken.out" 2>"$work/broken.err"
rc=$?
check "a damaged picture is reported, the rest scored, exit 1" '[ "$rc" -eq 1 ] && grep -q "seed_000002" "$work/broken.err" && grep -q "^mtl  *3 " "$work/broken.out"'


# 6. The output folder is the batch's alone: nothing through a symbolic link, nothing of the
# user's taken for a sample, one process per shard, every fault found before the models load.
guard="$work/guard"
loud=(--bundle "$bundle" --set steps=2 --set stages=1)  # info logs on: "loading bundle" shows
mkdir -p "$guard/out" "$work/elsewhere"
ln -s "$work/elsewhere" "$guard/out/evil"
printf '%s\n' '{"prompts": ["a"], "out": "evil"}' >"$guard/evil.jsonl"
"$bin" batch "$guard/evil.jsonl" "${loud[@]}" --out "$guard/out" >/dev/null 2>"$guard/evil.err"
rc=$?
check "a job folder that is a symbolic link: its sample fails (exit 1), nothing written through it" \
  '[ "$rc" -eq 1 ] && grep -q "symbolic link" "$guard/evil.err" && [ -z "$(ls -A "$work/elsewhere")" ] && grep -q "symbolic link" "$guard/out/summary.jsonl"'
echo "the user's file" >"$work/victim"
mkdir -p "$guard/out2" && ln -s "$work/victim" "$guard/out2/summary.jsonl"
printf '%s\n' '{"prompts": ["a"], "out": "fine"}' >"$guard/fine.jsonl"
"$bin" batch "$guard/fine.jsonl" "${loud[@]}" --out "$guard/out2" >/dev/null 2>"$guard/summary.err"
rc=$?
check "a summary that is a symbolic link: exit 2, the linked file untouched" \
  '[ "$rc" -eq 2 ] && grep -q "symbolic link" "$guard/summary.err" && [ "$(cat "$work/victim")" = "the user'"'"'s file" ] && ! grep -q "loading bundle" "$guard/summary.err"'
mkdir -p "$guard/out3/fine/seed_000000" && ln -s "$work/run/pair1/seed_000007" "$guard/out3/fine/seed_000001"
printf '%s\n' '{"prompts": ["a"], "out": "fine", "seeds": [0, 1, 2]}' >"$guard/three.jsonl"
"$bin" batch "$guard/three.jsonl" "${common[@]}" --out "$guard/out3" >/dev/null 2>"$guard/three.err"
rc=$?
check "an empty folder or a link named like a sample is not taken for one, and is left alone" \
  '[ "$rc" -eq 1 ] && [ -z "$(ls -A "$guard/out3/fine/seed_000000")" ] && [ -L "$guard/out3/fine/seed_000001" ] && [ -f "$guard/out3/fine/seed_000002/metadata.json" ] && [ "$(grep -c "not a complete sample" "$guard/out3/summary.jsonl")" -eq 2 ]'
"$bin" batch "$guard/fine.jsonl" "${loud[@]}" --out "$guard/out4" --summary "$work/no/such/dir/s.jsonl" >/dev/null 2>"$guard/nosum.err"
rc=$?
check "a summary that cannot be written: exit 2 before the models load" \
  '[ "$rc" -eq 2 ] && grep -q "s.jsonl" "$guard/nosum.err" && ! grep -q "loading bundle" "$guard/nosum.err"'
SLURM_ARRAY_TASK_ID=abc SLURM_ARRAY_TASK_COUNT=2 "$bin" batch "$guard/fine.jsonl" "${common[@]}" --out "$guard/out5" >/dev/null 2>"$guard/slurm.err"
rc=$?
check "SLURM_ARRAY_TASK_ID=abc: exit 2, not shard 0" '[ "$rc" -eq 2 ] && grep -q "SLURM_ARRAY_TASK_ID" "$guard/slurm.err" && [ ! -e "$guard/out5" ]'
"$bin" batch "$guard/fine.jsonl" "${common[@]}" --out "" >/dev/null 2>"$guard/empty.err"
rc=$?
check "an empty --out: exit 2" '[ "$rc" -eq 2 ]'
printf '{"prompts": ["a"], "num_samples": 100000, "out": "j%d"}\n' $(seq 1 20000) >"$guard/huge.jsonl"
echo 0 >"$guard/huge.mem"
timer=(); [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%M" -o "$guard/huge.mem")
"${timer[@]}" "$bin" batch "$guard/huge.jsonl" "${common[@]}" --out "$guard/huge" >/dev/null 2>"$guard/huge.err"
rc=$?
check "2e9 samples asked for: refused by the sample budget (exit 2, bounded memory)" \
  '[ "$rc" -eq 2 ] && grep -q "more than its limit" "$guard/huge.err" && [ "$(tail -1 "$guard/huge.mem")" -lt 1000000 ] && [ ! -e "$guard/huge" ]'
# The same shard twice at once: the second refuses; other shards may share the folder.
for i in 1 2 3 4 5 6; do printf '{"prompts": ["a dog %d"], "seeds": [%d], "out": "lock"}\n' "$i" "$i"; done >"$guard/lock.jsonl"
"$bin" batch "$guard/lock.jsonl" "${common[@]}" --out "$guard/locked" >/dev/null 2>&1 &
first=$!
for _ in $(seq 300); do [ -e "$guard/locked/summary.jsonl" ] && break; sleep 0.1; done
"$bin" batch "$guard/lock.jsonl" "${common[@]}" --out "$guard/locked" >/dev/null 2>"$guard/second.err"
rc=$?
wait "$first"
first_rc=$?
check "the same shard twice at once: the second exits 2 naming the other batch; the first completes" \
  '[ "$rc" -eq 2 ] && grep -q "another anagram batch" "$guard/second.err" && [ "$first_rc" -eq 0 ] && [ "$(ls -d "$guard"/locked/lock/seed_* | wc -l)" -eq 6 ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

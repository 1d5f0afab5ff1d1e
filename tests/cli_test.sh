#!/usr/bin/env bash
# End-to-end tests of the anagram program on the bundled default model.
# Usage: cli_test.sh ANAGRAM_BINARY BUNDLE_DIR
# Set ANAGRAM_TEST_HAS_CUDA=1 on a machine where --device cuda must work.
set -u
bin=$1
bundle=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

# Runs the program, keeping stdout, stderr and the exit code.
run() {
  "$bin" "$@" >"$work/stdout" 2>"$work/stderr"
  rc=$?
}

# Expects exit code 2 and a one-line error on stderr mentioning $1 (info logs aside).
expect_usage_error() {
  local needle=$1 name=$2
  shift 2
  run "$@"
  local lines
  lines=$(grep -v '^\[info\]' "$work/stderr" | grep -c .)
  if [ "$rc" -eq 2 ] && grep -q -- "$needle" "$work/stderr" && [ "$lines" -eq 1 ]; then
    pass "$name"
  else
    fail "$name (rc=$rc, stderr: $(head -c 300 "$work/stderr"))"
  fi
}

# 1. The README's main job writes every file.
out="$work/out"
run gen --bundle "$bundle" --stages 2 --prompt "dog" --prompt "cat" --view rot180 --out "$out" --quiet
check "gen exits 0" '[ "$rc" -eq 0 ]'
s="$out/sample_000"
for f in anagram.png view_0_identity_dog.png view_1_rotate_180_cat.png sheet.png metadata.json; do
  check "gen writes $f" '[ -s "$s/$f" ]'
done
check "PNG signature" '[ "$(head -c 8 "$s/anagram.png" | od -An -tx1 | tr -d " \n")" = "89504e470d0a1a0a" ]'
check "stdout names the sample folder" 'grep -q "sample_000" "$work/stdout"'
check "metadata records the seed" 'grep -q "\"seed\": 0" "$s/metadata.json"'
check "metadata records the manifest hash" 'grep -q "\"manifest_sha256\": \"[0-9a-f]\{64\}\"" "$s/metadata.json"'
check "metadata records libtorch" 'grep -q "\"libtorch\"" "$s/metadata.json"'
check "no temporary files left" '[ -z "$(find "$out" -name ".*")" ]'

check "metadata records the method" 'grep -q "\"antiseg_losses\"" "$s/metadata.json" && grep -q "\"clip_scores\"" "$s/metadata.json"'

# 2. Same seed -> same bytes; another seed -> another picture (short runs, method on).
short=(gen --bundle "$bundle" --stages 2 --prompt "dog" --prompt "cat" --view rot180 --steps 4 -q)
run "${short[@]}" --out "$work/once"
run "${short[@]}" --out "$work/again"
for f in anagram.png view_0_identity_dog.png view_1_rotate_180_cat.png sheet.png; do
  check "same seed, same bytes: $f" 'cmp -s "$work/once/sample_000/$f" "$work/again/sample_000/$f"'
done
run "${short[@]}" --out "$work/other" --seed 1
check "another seed, another picture" '! cmp -s "$work/once/sample_000/anagram.png" "$work/other/sample_000/anagram.png"'

# 2b. Every row of the ablation table is one command.
for variant in "--method baseline" "--no-antiseg" "--no-balance" "--no-rectify" \
  "--no-antiseg --no-balance --no-rectify" "--exact-steps-exponent --exact-clip-input"; do
  # shellcheck disable=SC2086
  run "${short[@]}" $variant --out "$work/ablation"
  check "ablation $variant runs" '[ "$rc" -eq 0 ] && [ -s "$work/ablation/sample_000/anagram.png" ]'
done
run "${short[@]}" --save-attention --concept "" --concept cat --out "$work/attention"
check "--save-attention writes heat maps" '[ "$rc" -eq 0 ] && [ -s "$work/attention/sample_000/attention_step03_1_rotate_180_cat.png" ]'

# 3. Several samples, explicit views for every prompt, a view argument.
run gen --bundle "$bundle" --stages 2 -p "a dog" -p "a cat" --view identity --view patch_permute --view-arg "" \
  --view-arg 4 --steps 3 --num-samples 2 --method baseline --out "$work/multi" -q
check "two samples" '[ "$rc" -eq 0 ] && [ -s "$work/multi/sample_000/anagram.png" ] && [ -s "$work/multi/sample_001/anagram.png" ]'
check "sample 1 uses seed + 1" 'grep -q "\"seed\": 1" "$work/multi/sample_001/metadata.json"'
check "two samples differ" '! cmp -s "$work/multi/sample_000/anagram.png" "$work/multi/sample_001/anagram.png"'

# 4. Bad input: one clear line, exit code 2, before any work.
expect_usage_error "prompt" "prompt/view count mismatch" gen --bundle "$bundle" --stages 2 -p a -p b -p c --view rot180 --out "$work/bad"
expect_usage_error "did you mean 'rotate_180'" "unknown view suggests the nearest" gen --bundle "$bundle" --stages 2 -p a -p b --view rotate_18 --out "$work/bad"
expect_usage_error "steps" "steps <= 0" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --steps 0 --out "$work/bad"
expect_usage_error "num-samples" "num-samples <= 0" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --num-samples 0 --out "$work/bad"
touch "$work/afile"
expect_usage_error "output folder" "output folder is a file" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --out "$work/afile/x"
expect_usage_error "manifest.json" "bundle without manifest" gen --bundle "$work" -p a -p b --view rot180 --out "$work/bad"
expect_usage_error "not a folder" "missing bundle" gen --bundle "$work/nope" -p a -p b --view rot180 --out "$work/bad"
expect_usage_error "dtype" "unknown dtype" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --dtype float8 --out "$work/bad"
expect_usage_error "exported in float32" "dtype other than the bundle's" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --dtype bfloat16 --out "$work/bad"
expect_usage_error "device" "unknown device" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --device tpu --out "$work/bad"
expect_usage_error "concept 'giraffe'" "concept not in the prompt" gen --bundle "$bundle" --stages 2 -p dog -p cat --view rot180 --concept "" --concept giraffe --out "$work/bad"
expect_usage_error "anti-segregation" "view without a 32x32 map" gen --bundle "$bundle" --stages 2 -p dog -p cat --view pixel_permute --out "$work/bad"
expect_usage_error "method" "unknown method" gen --bundle "$bundle" --stages 2 -p dog -p cat --view rot180 --method magic --out "$work/bad"
expect_usage_error "--view-arg" "view-arg count" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --view-arg 1 --view-arg 2 --out "$work/bad"
expect_usage_error "error" "unknown option" gen --bundle "$bundle" --stages 2 -p a --frobnicate
if [ "${ANAGRAM_TEST_HAS_CUDA:-0}" = 1 ]; then
  run gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --device cuda --steps 2 --out "$work/cuda" -q
  check "cuda run works" '[ "$rc" -eq 0 ]'
else
  expect_usage_error "CUDA" "cuda without a GPU" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --device cuda --out "$work/bad"
fi
check "failed runs wrote nothing" '[ ! -e "$work/bad" ] || [ -z "$(ls -A "$work/bad")" ]'

# A corrupt bundle: a UNet file that is not TorchScript.
cp -r "$bundle" "$work/corrupt"
echo "not a model" >"$work/corrupt/unet.pt"
expect_usage_error "unet.pt" "corrupt UNet file" gen --bundle "$work/corrupt" -p a -p b --view rot180 --steps 1 --out "$work/bad2"

# 5. An interrupted run exits 130 and leaves no partial sample.
"$bin" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --steps 1000 --out "$work/int" -q >/dev/null 2>"$work/stderr" &
pid=$!
for _ in $(seq 50); do [ -d "$work/int" ] && break; sleep 0.1; done
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
check "interrupt exits 130" '[ "$rc" -eq 130 ]'
check "interrupt leaves nothing behind" '[ -z "$(ls -A "$work/int" 2>/dev/null)" ]'

# 5b. What is already in --out survives; new samples take the next free numbers.
keep="$work/keep"
mkdir -p "$keep/sample_000" && echo mine >"$keep/sample_000/notes.txt" && echo mine >"$keep/sample_001"
run gen --bundle "$bundle" -p dog -p cat --view rot180 --steps 2 --stages 1 --out "$keep" -q
check "existing sample_000 survives" '[ "$rc" -eq 0 ] && [ "$(cat "$keep/sample_000/notes.txt")" = mine ] && [ "$(cat "$keep/sample_001")" = mine ]'
check "new sample is sample_002" '[ -s "$keep/sample_002/anagram.png" ] && grep -q "sample_002" "$work/stdout"'

# 5c. A killed run leaves only a hidden temporary folder, which the next run removes; the
# user's files there survive both.
mkdir -p "$work/killed/sample_000" && echo mine >"$work/killed/sample_000/notes.txt"
"$bin" gen --bundle "$bundle" --stages 2 -p a -p b --view rot180 --steps 1000 --out "$work/killed" -q >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -n "$(find "$work/killed" -maxdepth 1 -name '.sample_*' 2>/dev/null)" ] && break; sleep 0.1; done
sleep 0.5
kill -KILL "$pid"
wait "$pid" 2>/dev/null
check "a killed run leaves no new sample folder" '[ "$(find "$work/killed" -maxdepth 1 -name "sample_*" | wc -l)" -eq 1 ]'
run gen --bundle "$bundle" -p a -p b --view rot180 --steps 1 --stages 1 --out "$work/killed" -q
check "the next run removes the dead run's temporary folder" '[ "$rc" -eq 0 ] && [ -z "$(find "$work/killed" -maxdepth 1 -name ".sample_*")" ] && [ -d "$work/killed/sample_001" ]'
check "the user's files survive a killed run" '[ "$(cat "$work/killed/sample_000/notes.txt")" = mine ]'

# 5d. An interrupted multi-sample run prints the samples it finished; the user's files stay.
mkdir -p "$work/int2" && echo mine >"$work/int2/notes.txt"
"$bin" gen --bundle "$bundle" -p a -p b --view rot180 --steps 2 --stages 1 --num-samples 1000 --out "$work/int2" -q >"$work/int2.out" 2>/dev/null &
pid=$!
for _ in $(seq 300); do [ -d "$work/int2/sample_001" ] && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
rc=$?
check "interrupted multi-sample run exits 130" '[ "$rc" -eq 130 ]'
check "the user's file survives an interrupted run" '[ "$(cat "$work/int2/notes.txt")" = mine ]'
check "it printed every finished sample" '[ "$(grep -c sample_ "$work/int2.out")" -eq "$(find "$work/int2" -maxdepth 1 -name "sample_*" | wc -l)" ] && [ "$(grep -c sample_ "$work/int2.out")" -ge 2 ]'

# 5e. One prompt works (anti-segregation has no pair: skipped, and the log says so).
run gen --bundle "$bundle" --stages 2 -p "a dog" --steps 2 --out "$work/one"
check "one prompt works" '[ "$rc" -eq 0 ] && [ -s "$work/one/sample_000/anagram.png" ] && grep -q "anti-segregation" "$work/stderr"'

# 5f. metadata.json reruns the sample byte for byte.
run gen --from-metadata "$work/multi/sample_001/metadata.json" --out "$work/rerun" -q
check "--from-metadata reproduces the picture" '[ "$rc" -eq 0 ] && cmp -s "$work/rerun/sample_000/anagram.png" "$work/multi/sample_001/anagram.png" && cmp -s "$work/rerun/sample_000/sheet.png" "$work/multi/sample_001/sheet.png"'

# 5g. Stage III: the x4 upscaler keeps both views at 1024; every size's files are written and
# the metadata reruns them byte for byte.
run gen --bundle "$bundle" --stages 3 -p dog -p cat --view rot180 --steps 2 --stage2-steps 2 \
  --stage3-steps 2 --out "$work/three" -q
s3="$work/three/sample_000"
# The side of a PNG, from its IHDR chunk (bytes 17-20: width, big-endian).
png_width() { od -An -tu1 -j16 -N4 "$1" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}'; }
for f in anagram_64.png anagram_256.png anagram.png view_0_identity_dog.png \
  view_1_rotate_180_cat.png view_1_rotate_180_cat_256.png sheet.png sheet_256.png sheet_64.png; do
  check "stage III writes $f" '[ "$rc" -eq 0 ] && [ -s "$s3/$f" ]'
done
check "stage III pictures are 1024 wide" '[ "$(png_width "$s3/anagram.png")" -eq 1024 ] && [ "$(png_width "$s3/view_1_rotate_180_cat.png")" -eq 1024 ] && [ "$(png_width "$s3/anagram_256.png")" -eq 256 ]'
check "stage III metadata" 'grep -q "\"stage3_steps\": 2" "$s3/metadata.json" && grep -q "\"vae_tiling\": \"auto\"" "$s3/metadata.json"'
run gen --from-metadata "$s3/metadata.json" --out "$work/three_again" -q
same=1
for f in "$s3"/*.png; do cmp -s "$f" "$work/three_again/sample_000/$(basename "$f")" || same=0; done
check "stage III reruns byte for byte" '[ "$rc" -eq 0 ] && [ "$same" -eq 1 ]'
run animate "$s3" --frames 2 --hold 1 --out "$work/three.webp" -q
check "animate a 1024 sample" '[ "$rc" -eq 0 ] && [ "$(head -c 4 "$work/three.webp")" = "RIFF" ]'
printf '%s\n' '{"prompts": ["dog", "cat"], "views": ["rot180"], "steps": 1, "stage2_steps": 1, "stage3_steps": 1, "stages": 3, "vae_tiling": "on", "out": "x4"}' >"$work/three.jsonl"
run batch "$work/three.jsonl" --bundle "$bundle" --out "$work/three_batch" -q
check "batch takes stage III fields" '[ "$rc" -eq 0 ] && [ "$(png_width "$work/three_batch/x4/seed_000000/anagram.png")" -eq 1024 ] && grep -q "\"vae_tiling\": \"on\"" "$work/three_batch/x4/seed_000000/metadata.json"'
# A view that moves pixels within latent cells: refused for stage III, the default stops at II.
run gen --bundle "$bundle" -p dog -p cat --view skew --steps 1 --stage2-steps 1 --out "$work/skew"
check "default stages stop before stage III for skew, with a note" '[ "$rc" -eq 0 ] && [ ! -e "$work/skew/sample_000/anagram_256.png" ] && [ "$(png_width "$work/skew/sample_000/anagram.png")" -eq 256 ] && grep -q "stopping after stage 2" "$work/stderr"'

# 5f'. A bundle changed at the same path since: refused naming both manifests (the rerun would
# silently differ), unless --allow-other-bundle, which the new metadata records.
cp -r "$bundle" "$work/changing"
run gen --bundle "$work/changing" -p dog -p cat --view rot180 --steps 2 --stages 1 --out "$work/made" -q
sed -i 's/"description": "/"description": "changed. /' "$work/changing/manifest.json"
run gen --from-metadata "$work/made/sample_000/metadata.json" --out "$work/changed" -q
check "--from-metadata with a changed bundle: exit 2 naming both manifests, nothing made" \
  '[ "$rc" -eq 2 ] && [ "$(grep -o "[0-9a-f]\{64\}" "$work/stderr" | sort -u | wc -l)" -eq 2 ] && [ ! -e "$work/changed" ]'
run gen --from-metadata "$work/made/sample_000/metadata.json" --allow-other-bundle --out "$work/changed" -q
check "--allow-other-bundle runs it and says so in the metadata" \
  '[ "$rc" -eq 0 ] && grep -q "\"allow_other_bundle\": true" "$work/changed/sample_000/metadata.json"'

# 5g. An output folder whose name is not UTF-8 still gets its metadata.json.
weird="$work/caf"$'\xe9'
run gen --bundle "$bundle" -p dog -p cat --view rot180 --steps 1 --stages 1 --out "$weird" -q
check "non-UTF-8 --out works" '[ "$rc" -eq 0 ] && [ -s "$weird/sample_000/metadata.json" ]'

# 6. The other subcommands.
run views
check "views lists rotate_180 with a description" '[ "$rc" -eq 0 ] && grep -q "rotate_180" "$work/stdout" && grep -q "square_hinge" "$work/stdout"'
run info "$bundle"
check "info names the bundle" '[ "$rc" -eq 0 ] && grep -q "tiny-if-random" "$work/stdout"'
run info "$bundle" --load
check "info --load probes the models" '[ "$rc" -eq 0 ] && grep -q "load .*ok" "$work/stdout"'
run --help
check "--help exits 0" '[ "$rc" -eq 0 ] && grep -q "gen" "$work/stdout"'
run gen --help
check "gen --help documents --view" '[ "$rc" -eq 0 ] && grep -q -- "--view" "$work/stdout"'

# 7. anagram animate: a WebP beside the sample, the user's file kept, PNG frames on request.
run gen --bundle "$bundle" -p "houseplants" -p "marilyn monroe" --view jigsaw --stages 1 --steps 2 \
  --out "$work/jig" --quiet
check "jigsaw view runs" '[ "$rc" -eq 0 ] && [ -s "$work/jig/sample_000/view_1_jigsaw_marilyn-monroe.png" ]'
run animate "$work/jig/sample_000" --frames 6 --hold 2 -q
if grep -q "no libwebp" "$work/stderr"; then
  echo "skipped: animated WebP (this build has no libwebp)"
else
  webp="$work/jig/sample_000/animation_64.webp"
  check "animate writes a WebP" '[ "$rc" -eq 0 ] && [ "$(head -c 4 "$webp")" = "RIFF" ] && [ "$(head -c 12 "$webp" | tail -c 4)" = "WEBP" ] && grep -q "animation_64.webp" "$work/stdout"'
  cp "$webp" "$work/first.webp"
  run animate "$work/jig/sample_000" -q
  check "an existing animation is kept (exit 2)" '[ "$rc" -eq 2 ] && cmp -s "$webp" "$work/first.webp" && grep -q "force" "$work/stderr"'
fi
# MP4 by --out's extension where the build has FFmpeg; any other extension is refused first.
run animate "$work/jig/sample_000" --frames 3 --hold 1 --out "$work/x.mp4" -q
if grep -q "no FFmpeg" "$work/stderr"; then
  echo "skipped: MP4 (this build has no FFmpeg)"
else
  check "animate --out x.mp4 writes an MP4" '[ "$rc" -eq 0 ] && [ -s "$work/x.mp4" ] && [ "$(head -c 8 "$work/x.mp4" | tail -c 4)" = "ftyp" ]'
fi
run animate "$work/jig/sample_000" --out "$work/x.gif" -q
check "animate --out x.gif: exit 2, one line, nothing written" '[ "$rc" -eq 2 ] && [ "$(wc -l <"$work/stderr")" -eq 1 ] && grep -q "\.webp or \.mp4" "$work/stderr" && [ ! -e "$work/x.gif" ]'
run animate "$work/jig/sample_000" --png-frames "$work/frames" --frames 3 --hold 1 -q
check "--png-frames writes every frame" '[ "$rc" -eq 0 ] && [ "$(ls "$work/frames" | wc -l)" -eq 8 ]'
run animate "$work/nonexistent" -q
check "animate of a missing sample: exit 2, one line" '[ "$rc" -eq 2 ] && [ "$(wc -l <"$work/stderr")" -eq 1 ]'
run animate "$work/jig/sample_000" --display 100 --out "$work/x.webp" -q
check "a bad display size: exit 2, nothing written" '[ "$rc" -eq 2 ] && [ ! -e "$work/x.webp" ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Table-driven tests of bad input and bad bundles: each case must exit 2 with exactly one line on
# stderr ("anagram: error: ..." naming the problem), create nothing, and, where the fault is in
# the input rather than a bundle file, fail before any model is loaded.
# Hostile code that would run while a bundle or scorer loads must not run at all: nothing written.
# Usage: bad_input_test.sh ANAGRAM_BINARY BUNDLE_DIR MAKE_BAD_BUNDLES_BINARY SCORER_DIR
set -u
bin=$1
bundle=$2
maker=$3
scorer=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }

# check NAME NEEDLE LOADS_ALLOWED(0|1) ARGS...: runs the program on ARGS.
check() {
  local name=$1 needle=$2 loads=$3
  shift 3
  rm -rf "$work/out"
  "$bin" "$@" >"$work/stdout" 2>"$work/stderr" </dev/null
  local rc=$?
  local lines first
  lines=$(grep -av '^\[info\]' "$work/stderr" | grep -ac .)
  first=$(grep -av '^\[info\]' "$work/stderr" | head -1)
  if [ "$rc" -ne 2 ]; then
    fail "$name: exit $rc, not 2 ($(head -c 300 "$work/stderr"))"
  elif [ "$lines" -ne 1 ] || [ "${first#anagram: error: }" = "$first" ]; then
    fail "$name: expected one 'anagram: error:' line, got $lines: $(head -c 400 "$work/stderr")"
  elif ! grep -aqF -- "$needle" "$work/stderr"; then
    fail "$name: error does not mention '$needle': $first"
  elif [ "${#first}" -gt 700 ]; then
    fail "$name: error line is ${#first} characters long"
  elif [ -e "$work/out" ]; then
    fail "$name: the output folder was created"
  elif [ "$loads" -eq 0 ] && grep -aq "loading bundle" "$work/stderr"; then
    fail "$name: a model was loaded before the input was refused"
  else
    pass
  fi
}

g2=(gen --bundle "$bundle" --out "$work/out" --steps 1)
g=("${g2[@]}" --stages 1)
ab=(-p "a dog" -p "a cat" --view rot180)

# 1. Bad input (options, prompts, numbers, devices, files): refused before any model loads.
check "no prompt" "--prompt" 0 "${g[@]}"
check "empty prompt" "--prompt 1" 0 "${g[@]}" -p "" -p cat --view rot180
check "blank prompt" "--prompt 2" 0 "${g[@]}" -p dog -p "   " --view rot180
check "non-ASCII white space only" "--prompt 2" 0 "${g[@]}" -p dog -p $'\u2003\u00a0\u3000' --view rot180
check "newline in prompt" "control character" 0 "${g[@]}" -p $'a dog\nsecond line' -p cat --view rot180
check "bell in prompt" "control character" 0 "${g[@]}" -p $'a\x07dog' -p cat --view rot180
check "100 KB prompt" "bytes long" 0 "${g[@]}" -p "$(head -c 100000 /dev/zero | tr '\0' a)" -p cat --view rot180
check "invalid UTF-8 prompt" "UTF-8" 0 "${g[@]}" -p $'caf\xc3' -p cat --view rot180
check "newline in style" "--style" 0 "${g[@]}" "${ab[@]}" --style $'oil\npainting'
check "nine prompts" "at most 8" 0 "${g[@]}" -p 1 -p 2 -p 3 -p 4 -p 5 -p 6 -p 7 -p 8 -p 9
check "views for prompts" "give one view per prompt" 0 "${g[@]}" -p a -p b -p c --view rot180
check "unknown view" "did you mean 'rotate_180'" 0 "${g[@]}" -p a -p b --view rotate_18
check "view-arg count" "--view-arg" 0 "${g[@]}" "${ab[@]}" --view-arg 1 --view-arg 2
check "bad view-arg" "--view 1" 0 "${g[@]}" -p a -p b --view patch_permute --view-arg seven
check "steps 0" "--steps" 0 "${g[@]}" "${ab[@]}" --steps 0
check "steps negative" "--steps" 0 "${g[@]}" "${ab[@]}" --steps -3
check "steps huge" "--steps" 0 "${g[@]}" "${ab[@]}" --steps 5000
check "steps not a number" "--steps" 0 "${g[@]}" "${ab[@]}" --steps many
check "guidance nan" "--guidance" 0 "${g[@]}" "${ab[@]}" --guidance nan
check "guidance inf" "--guidance" 0 "${g[@]}" "${ab[@]}" --guidance inf
check "guidance negative" "--guidance" 0 "${g[@]}" "${ab[@]}" --guidance -1
check "guidance absurd" "--guidance" 0 "${g[@]}" "${ab[@]}" --guidance 1e9
check "antiseg-lr nan" "--antiseg-lr" 0 "${g[@]}" "${ab[@]}" --antiseg-lr nan
check "antiseg-lr negative" "--antiseg-lr" 0 "${g[@]}" "${ab[@]}" --antiseg-lr -5
check "antiseg-lr absurd" "--antiseg-lr" 0 "${g[@]}" "${ab[@]}" --antiseg-lr 1e12
check "antiseg-target above 0.5" "--antiseg-target" 0 "${g[@]}" "${ab[@]}" --antiseg-target 2
check "antiseg-target nan" "--antiseg-target" 0 "${g[@]}" "${ab[@]}" --antiseg-target nan
check "antiseg-steps negative" "--antiseg-steps" 0 "${g[@]}" "${ab[@]}" --antiseg-steps -5
check "seed -1" "--seed" 0 "${g[@]}" "${ab[@]}" --seed -1
check "seed 1.5" "--seed" 0 "${g[@]}" "${ab[@]}" --seed 1.5
check "seed above 2^64" "--seed" 0 "${g[@]}" "${ab[@]}" --seed 99999999999999999999
check "seed + samples wrap" "--seed" 0 "${g[@]}" "${ab[@]}" --seed 18446744073709551615 --num-samples 2
check "num-samples 0" "--num-samples" 0 "${g[@]}" "${ab[@]}" --num-samples 0
check "num-samples absurd" "--num-samples" 0 "${g[@]}" "${ab[@]}" --num-samples 10000000
check "device index overflow" "--device" 0 "${g[@]}" "${ab[@]}" --device cuda:99999999999
check "unknown device" "--device" 0 "${g[@]}" "${ab[@]}" --device tpu
check "device with newline" "--device" 0 "${g[@]}" "${ab[@]}" --device $'cpu\n'
check "unknown text device" "--text-device" 0 "${g[@]}" "${ab[@]}" --text-device gpu
check "unknown dtype" "--dtype" 0 "${g[@]}" "${ab[@]}" --dtype float8
check "dtype of another export" "exported in float32" 0 "${g[@]}" "${ab[@]}" --dtype bfloat16
check "unknown method" "--method" 0 "${g[@]}" "${ab[@]}" --method magic
check "stages 4" "--stages" 0 "${g2[@]}" "${ab[@]}" --stages 4
check "stage III noise level above 350" "--stage3-noise-level" 0 "${g2[@]}" "${ab[@]}" --stage3-noise-level 351
check "stage III steps 0" "--stage3-steps" 0 "${g2[@]}" "${ab[@]}" --stage3-steps 0
check "a view that cannot run in stage III" "cannot run in stage 3" 0 "${g2[@]}" -p a -p b --view skew --stages 3
check "vae tiling" "--vae-tiling" 0 "${g2[@]}" "${ab[@]}" --vae-tiling sometimes
check "noise level too high" "--noise-level" 0 "${g2[@]}" "${ab[@]}" --noise-level 5000
check "stage II steps 0" "--stage2-steps" 0 "${g2[@]}" "${ab[@]}" --stage2-steps 0
check "stage II guidance nan" "--stage2-guidance" 0 "${g2[@]}" "${ab[@]}" --stage2-guidance nan
check "threads negative" "--threads" 0 "${g[@]}" "${ab[@]}" --threads -1
check "concept count" "--concept" 0 "${g[@]}" "${ab[@]}" --concept dog
check "concept not in prompt" "concept 'giraffe'" 0 "${g[@]}" "${ab[@]}" --concept "" --concept giraffe
check "view without 32x32 maps" "anti-segregation" 0 "${g[@]}" -p a -p b --view pixel_permute
touch "$work/afile"
check "output under a file" "is not a folder" 0 gen --bundle "$bundle" --stages 2 "${ab[@]}" --out "$work/afile/x"
check "missing bundle" "not a folder" 0 gen --bundle "$work/nope" "${ab[@]}" --out "$work/out"
mkdir -p "$work/empty"
check "bundle without manifest" "has no manifest.json" 0 gen --bundle "$work/empty" "${ab[@]}" --out "$work/out"
check "missing metadata file" "cannot read" 0 gen --from-metadata "$work/nope.json" --out "$work/out"
echo '{"request": 1}' >"$work/notmeta.json"
check "not a metadata file" "metadata" 0 gen --from-metadata "$work/notmeta.json" --out "$work/out"
printf '{"request": {"prompts": ["a"], "steps": 1.5}, "session": {"bundle": "%s", "device": "cpu", "dtype": "auto"}}' "$bundle" >"$work/badmeta.json"
check "metadata with a bad field" "request.steps" 0 gen --from-metadata "$work/badmeta.json" --out "$work/out"
check "metadata plus prompts" "excludes" 0 gen --from-metadata "$work/badmeta.json" -p a --out "$work/out"
check "unknown option" "--frobnicate" 0 gen "${ab[@]}" --frobnicate
check "info on a missing bundle" "not a folder" 0 info "$work/nope"

# 2. Bad bundles, made from the default one: refused with one line, nothing created, nothing
# outside the bundle touched.
"$maker" "$bundle" "$work/bad" "$scorer" >/dev/null || fail "making the bad bundles"
rm -f /tmp/anagram-hostile-bundle-wrote-this
marker=$work/bad/hostile-wrote-this
wrote() { # NAME: fails NAME if hostile code ran (and wrote its marker)
  if [ -e "$marker" ]; then
    fail "$1: hostile code ran while loading and wrote a file"
    rm -f "$marker"
  else
    pass
  fi
}
bundles=0
while IFS=$'\t' read -r name needle; do
  bundles=$((bundles + 1))
  check "bundle $name (gen)" "$needle" 1 gen --bundle "$work/bad/$name" "${ab[@]}" --out "$work/out" --steps 1 --stages 1
  wrote "bundle $name (gen)"
  check "bundle $name (info --load)" "$needle" 1 info "$work/bad/$name" --load
  wrote "bundle $name (info --load)"
done <"$work/bad/cases.tsv"
[ ! -e /tmp/anagram-hostile-bundle-wrote-this ] && pass || fail "a hostile bundle wrote a file"
[ "$bundles" -ge 30 ] && pass || fail "only $bundles bad bundles"

# 3. Hostile scorers (anagram score --scorer), on a sample made with the good bundle.
"$bin" gen --bundle "$bundle" "${ab[@]}" --steps 1 --stages 1 --out "$work/sample" -q >/dev/null 2>&1 ||
  fail "making a sample to score"
scorers=0
while IFS=$'\t' read -r name needle; do
  scorers=$((scorers + 1))
  check "scorer $name (score)" "$needle" 1 score "$work/sample" --scorer "$work/bad/scorers/$name"
  wrote "scorer $name (score)"
done <"$work/bad/scorers.tsv"
[ "$scorers" -ge 5 ] && pass || fail "only $scorers hostile scorers"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

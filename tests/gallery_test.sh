#!/usr/bin/env bash
# `anagram gallery` end to end on real samples: a small batch of the bundled model (two prompt
# pairs, the method and the baseline, three seeds each) and its scores. The page has a card per
# sample with its score, escapes a hostile prompt and folder name, refuses bad input (exit 2, one
# line, no page), replaces its own page but no other file without --force, and never writes
# through a symbolic link. Then, on a copy of the folder moved elsewhere after the page was
# written (so the pictures must be linked relatively), headless Chromium opens
# index.html#selftest: the page's own script clicks "alignment" and writes the order, the
# pictures loaded and the errors it saw into the DOM, which --dump-dom prints; the browser's
# console must stay empty (the page's Content-Security-Policy would report any injected script
# there); a screenshot is kept at SCREENSHOT_PNG. Without Chromium (scripts/test.sh installs
# Debian's chromium) the browser part cannot run: exit 77 (skipped) once the rest has passed.
# Usage: gallery_test.sh ANAGRAM_BINARY BUNDLE_DIR SCORER_DIR SCREENSHOT_PNG
set -u
bin=$1
bundle=$2
scorer=$3
shot=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() { if eval "$2"; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; fi; }

# 0. The samples and their scores.
for pair in '"a dog", "a cat"' '"an ape", "a bee"'; do
  for method in mtl baseline; do
    printf '{"prompts": [%s], "views": ["rot180"], "method": "%s", "seeds": [0, 1, 2], "out": "%s"}\n' \
      "$pair" "$method" "$(echo "$pair" | tr -dc 'a-z')-$method" >>"$work/jobs.jsonl"
  done
done
run="$work/run"
"$bin" batch "$work/jobs.jsonl" --bundle "$bundle" --set steps=2 --set stages=1 -q --out "$run" \
  >/dev/null 2>"$work/batch.err"
n=$(find "$run" -mindepth 2 -maxdepth 2 -name 'seed_*' | wc -l)
"$bin" score "$run" --scorer "$scorer" -q --json "$work/scores.json" >/dev/null 2>>"$work/batch.err"
scores="$work/scores.json"
check "the batch made 12 samples and score their scores" '[ "$n" -eq 12 ] && [ -s "$scores" ]'

# 1. The page of the batch's own folder, with its scores.
"$bin" gallery "$run" --scores "$scores" -q >"$work/page.out" 2>"$work/page.err"
rc=$?
page="$run/index.html"
check "gallery exits 0 and prints the page" '[ "$rc" -eq 0 ] && [ "$(cat "$work/page.out")" = "$page" ] && [ -s "$page" ]'
check "one card per sample, every one scored, four groups" \
  '[ "$(grep -o "<article class=\"card\"" "$page" | wc -l)" -eq "$n" ] && [ "$(grep -o " data-alignment=" "$page" | wc -l)" -eq "$n" ] && [ "$(grep -o "<section class=\"group\"" "$page" | wc -l)" -eq 4 ] && [ ! -s "$work/page.err" ]'
check "nothing from the network, pictures linked relatively" \
  '[ -z "$(grep -o "https\?://[^\" ]*" "$page" | grep -v "^http://www.w3.org/2000/svg$")" ] && ! grep -q "src=\"/" "$page" && grep -q "src=\"adogacat-mtl/seed_000001/sheet.png\"" "$page"'
check "the summary plot is there, both methods" 'grep -q "<svg" "$page" && grep -q "<title>mtl: mean A " "$page" && grep -q "<title>baseline: mean A " "$page"'
"$bin" gallery "$run" --scores "$scores" -q >/dev/null 2>"$work/again.err"
rc=$?
check "a second run replaces its own page" '[ "$rc" -eq 0 ] && [ ! -s "$work/again.err" ] && [ -s "$page" ]'
echo "my notes" >"$work/notes.html"
"$bin" gallery "$run" --out "$work/notes.html" -q >/dev/null 2>"$work/notes.err"
rc=$?
check "a file it did not make is refused (exit 2, one line) and kept" \
  '[ "$rc" -eq 2 ] && [ "$(wc -l <"$work/notes.err")" -eq 1 ] && grep -q "force" "$work/notes.err" && [ "$(cat "$work/notes.html")" = "my notes" ]'
"$bin" gallery "$run" --out "$work/notes.html" --force -q >/dev/null 2>&1
rc=$?
check "--force replaces it" '[ "$rc" -eq 0 ] && grep -q "<article class=\"card\"" "$work/notes.html"'
ln -s "$work/notes.html" "$work/link.html"
"$bin" gallery "$run" --out "$work/link.html" --force -q >/dev/null 2>"$work/link.err"
rc=$?
check "a symbolic link is refused, even with --force" \
  '[ "$rc" -eq 2 ] && grep -q "symbolic link" "$work/link.err" && [ -L "$work/link.html" ]'
rm -f "$page"

# 2. Bad input: exit 2, one line, no page.
refused() {  # name, then the command's arguments
  local name=$1
  shift
  "$bin" gallery "$@" -q >/dev/null 2>"$work/refused.err"
  local rc=$?
  check "$name: exit 2, one line, no page" \
    '[ "$rc" -eq 2 ] && [ "$(wc -l <"$work/refused.err")" -eq 1 ] && [ ! -e "$work/refused.html" ]'
}
echo "not json" >"$work/bad.json"
refused "a scores file that is not JSON" "$run" --scores "$work/bad.json" --out "$work/refused.html"
echo '{"scorer": {"name": "x"}, "samples": [{"folder": 1}]}' >"$work/wrong.json"
refused "a scores file of the wrong shape" "$run" --scores "$work/wrong.json" --out "$work/refused.html"
refused "a missing scores file" "$run" --scores "$work/none.json" --out "$work/refused.html"
refused "OUT that is not a folder" "$work/bad.json" --out "$work/refused.html"
mkdir -p "$work/empty"
refused "OUT without samples" "$work/empty" --out "$work/refused.html"
refused "--out in a missing folder" "$run" --out "$work/no/such/refused.html"

# 3. A copy with a hostile prompt and folder name and an animation, moved after the page was made.
cp -r "$run" "$work/made"
first="$work/made/adogacat-mtl/seed_000000"
"$bin" animate "$first" -q >/dev/null 2>&1
animations=$(find "$first" -maxdepth 1 -name 'animation*.webp' | wc -l)
hostile_name='a"><img src=x onerror=alert(1)> &amp; <\script>'
mkdir -p "$work/made/hostile"
cp -r "$first" "$work/made/hostile/$hostile_name"
rm -f "$work/made/hostile/$hostile_name"/animation*
sed -i -E 's/"a dog"/"<img src=x onerror=alert(1)> <\/script><script>alert(2)<\/script>"/g' \
  "$work/made/hostile/$hostile_name/metadata.json"
"$bin" gallery "$work/made" --scores "$scores" -q >/dev/null 2>"$work/made.err"
rc=$?
mv "$work/made" "$work/moved"
moved="$work/moved/index.html"
check "the copy's page: a card more, scores matched by their folders' last components" \
  '[ "$rc" -eq 0 ] && [ "$(grep -o "<article class=\"card\"" "$moved" | wc -l)" -eq $((n + 1)) ] && [ "$(grep -o " data-alignment=" "$moved" | wc -l)" -eq "$n" ] && grep -q "1 of $((n + 1)) samples have no score" "$work/made.err"'
check "the hostile prompt and folder name are escaped" \
  '! grep -q "<img src=x" "$moved" && ! grep -q "<script>alert" "$moved" && grep -q "&lt;img src=x onerror=alert(1)&gt; &lt;/script&gt;" "$moved" && grep -q "a&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp;amp; &lt;\\\\script&gt;" "$moved"'
check "the animation is on its card" '[ "$animations" -eq 0 ] || grep -q "<img class=\"anim\" src=\"[^\"]*animation[^\"]*.webp\"" "$moved"'

# 4. In the browser.
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  echo "skipped: the browser checks need Chromium (scripts/test.sh installs Debian's chromium)"
  exit 77
else
  start=$(date +%s)
  flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile"
         --enable-logging=stderr --v=0 --virtual-time-budget=15000)
  timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$moved#selftest" >"$work/dom.html" 2>"$work/console.err"
  sed -n '/^<pre id="selftest"/,/<\/pre>/p' "$work/dom.html" >"$work/selftest.txt"
  images=$(grep -o "<img " "$moved" | wc -l)
  # The order the click must give: by the cards' own alignment, highest first, ties in page
  # order, the unscored card (the hostile copy) last.
  expected=$(sed -n 's/^<article class="card" data-key="\([^"]*\)" data-order="\([0-9]*\)".* data-alignment="\([^"]*\)".*/\3 \2 \1/p' "$moved" |
    sort -k1,1gr -k2,2n | cut -d' ' -f3 | tr '\n' ' ' | sed 's/ $//')
  got=$(sed -n 's/^order //p' "$work/selftest.txt")
  check "the self-test ran: every card, every picture loaded, no error" \
    'grep -q "selftest done" "$work/selftest.txt" && grep -q "^cards $((n + 1))$" "$work/selftest.txt" && grep -q "^images $images/$images$" "$work/selftest.txt" && grep -q "^errors 0$" "$work/selftest.txt"'
  check "after the click on alignment: highest first, the unscored card last" \
    'grep -q "^sorted yes$" "$work/selftest.txt" && [ "${got% hostile/*}" = "$expected" ] && [ "${got##* }" != "${got##* hostile/}" ]'
  check "nothing on the browser's console" '! grep -q ":CONSOLE" "$work/console.err"'
  grep ":CONSOLE" "$work/console.err" | head -5
  [ "$failed" -eq 0 ] || sed 's/^/  selftest: /' "$work/selftest.txt" | cut -c1-300
  mkdir -p "$(dirname "$shot")"
  rm -f "$shot"
  timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,1400 \
    --screenshot="$shot" "file://$moved" >/dev/null 2>&1
  check "a screenshot is kept" '[ "$(head -c 4 "$shot" 2>/dev/null | tail -c 3)" = "PNG" ]'
  echo "screenshot: $shot (browser checks took $(($(date +%s) - start)) s)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

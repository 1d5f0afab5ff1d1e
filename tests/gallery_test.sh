#!/usr/bin/env bash
# `anagram gallery` end to end on real samples: tests/batch_test.sh feeds it the 20 samples of
# its batch and their scores. The page has a card per sample with its score, escapes a hostile
# prompt and folder name, refuses bad input (exit 2, one line, no page) and never replaces a page
# without --force. Then, on a copy of the folder moved elsewhere after the page was written (so
# the pictures must be linked relatively), headless Chromium opens index.html#selftest: the
# page's own script sorts by alignment and writes the order, the pictures loaded and the errors
# it saw into the DOM, which --dump-dom prints; the browser's console must stay empty (the
# page's Content-Security-Policy would report any injected script there); a screenshot is kept.
# Without Chromium the browser part is skipped, with a message.
# Usage: gallery_test.sh ANAGRAM_BINARY SAMPLES_DIR SCORES_JSON SCORES_CSV SCREENSHOT_PNG
set -u
bin=$1
run=$(realpath "$2")
scores=$3
csv=$4
shot=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() { if eval "$2"; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; fi; }
n=$(find "$run" -mindepth 2 -maxdepth 2 -name 'seed_*' | wc -l)

# 1. The page of the batch's own folder, with its scores; kept unless --force.
"$bin" gallery "$run" --scores "$scores" -q >"$work/page.out" 2>"$work/page.err"
rc=$?
page="$run/index.html"
check "gallery exits 0 and prints the page" '[ "$rc" -eq 0 ] && [ "$(cat "$work/page.out")" = "$page" ] && [ -s "$page" ]'
check "one card per sample, every one scored" \
  '[ "$(grep -o "<article class=\"card\"" "$page" | wc -l)" -eq "$n" ] && [ "$(grep -o " data-alignment=" "$page" | wc -l)" -eq "$n" ] && [ ! -s "$work/page.err" ]'
check "nothing from the network, pictures linked relatively" \
  '[ -z "$(grep -o "https\?://[^\" ]*" "$page" | grep -v "^http://www.w3.org/2000/svg$")" ] && ! grep -q "src=\"/" "$page" && grep -q "src=\"pair1/seed_000007/sheet.png\"" "$page"'
check "the summary plot is there" 'grep -q "<svg" "$page" && grep -q "<title>mtl: mean A " "$page"'
cp "$page" "$work/before.html"
"$bin" gallery "$run" --scores "$scores" -q >/dev/null 2>"$work/again.err"
rc=$?
check "an existing page is refused (exit 2, one line) and kept" \
  '[ "$rc" -eq 2 ] && [ "$(wc -l <"$work/again.err")" -eq 1 ] && grep -q "force" "$work/again.err" && cmp -s "$page" "$work/before.html"'
"$bin" gallery "$run" --scores "$scores" -q --force >/dev/null 2>&1
rc=$?
check "--force replaces it" '[ "$rc" -eq 0 ] && [ -s "$page" ]'
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
first=$(find "$work/made" -mindepth 2 -maxdepth 2 -name 'seed_*' | sort | head -1)
"$bin" animate "$first" -q >/dev/null 2>&1
animations=$(find "$first" -maxdepth 1 -name 'animation*.webp' | wc -l)
hostile_name='a"><img src=x onerror=alert(1)> &amp; <\script>'
mkdir -p "$work/made/hostile"
cp -r "$first" "$work/made/hostile/$hostile_name"
rm -f "$work/made/hostile/$hostile_name"/animation*
sed -i -E 's/"a dog ([0-9]+)"/"<img src=x onerror=alert(\1)> <\/script><script>alert(2)<\/script>"/g' \
  "$work/made/hostile/$hostile_name/metadata.json"
"$bin" gallery "$work/made" --scores "$scores" -q >/dev/null 2>"$work/made.err"
rc=$?
mv "$work/made" "$work/moved"
moved="$work/moved/index.html"
check "the copy's page: a card more, scores matched by their folders' last components" \
  '[ "$rc" -eq 0 ] && [ "$(grep -o "<article class=\"card\"" "$moved" | wc -l)" -eq $((n + 1)) ] && [ "$(grep -o " data-alignment=" "$moved" | wc -l)" -eq "$n" ] && grep -q "1 of $((n + 1)) samples have no score" "$work/made.err"'
check "the hostile prompt and folder name are escaped" \
  '! grep -q "<img src=x" "$moved" && ! grep -q "<script>alert" "$moved" && grep -q "&lt;img src=x onerror=alert(" "$moved" && grep -q "a&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp;amp; &lt;\\\\script&gt;" "$moved"'
check "the animation is on its card" '[ "$animations" -eq 0 ] || grep -q "<img class=\"anim\" src=\"[^\"]*animation_[0-9]*.webp\"" "$moved"'

# 4. In the browser.
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "skipped: the browser checks need Chromium (scripts/test.sh installs Debian's chromium)"
else
  start=$(date +%s)
  flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile"
         --enable-logging=stderr --v=0 --virtual-time-budget=15000)
  timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$moved#selftest" >"$work/dom.html" 2>"$work/console.err"
  sed -n '/^<pre id="selftest"/,/<\/pre>/p' "$work/dom.html" >"$work/selftest.txt"
  images=$(grep -o "<img " "$moved" | wc -l)
  # The CSV's folders end in <job>/seed_NNNNNN, as the cards' keys.
  expected=$(awk -F, 'NR > 1 { print $7, $1 }' "$csv" | sort -s -k1,1gr |
    awk '{ n = split($2, p, "/"); print p[n - 1] "/" p[n] }' | tr '\n' ' ' | sed 's/ $//')
  got=$(sed -n 's/^order //p' "$work/selftest.txt")
  check "the self-test ran: every card, every picture loaded, no error" \
    'grep -q "selftest done" "$work/selftest.txt" && grep -q "^cards $((n + 1))$" "$work/selftest.txt" && grep -q "^images $images/$images$" "$work/selftest.txt" && grep -q "^errors 0$" "$work/selftest.txt"'
  check "after the click on alignment: sorted as the scores CSV, the unscored card last" \
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

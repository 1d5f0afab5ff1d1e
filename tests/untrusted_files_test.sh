#!/usr/bin/env bash
# Untrusted files and a hostile environment, end to end (issue 17): temporary files never follow
# links planted at their names; a file size limit (ulimit -f) is one line and exit 1 with nothing
# half-written, never a silent SIGXFSZ; a PNG that inflates far beyond its pixels costs only its
# pixels; animations are bounded before any work; a truncated font is not a crash; a model's
# torch.warn text reaches the terminal with its escape sequences escaped.
# Usage: untrusted_files_test.sh ANAGRAM_BINARY BUNDLE_DIR SCORER_DIR MAKE_BAD_BUNDLES_BINARY
set -u
bin=$1
bundle=$2
scorer=$3
maker=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

"$bin" gen --bundle "$bundle" -p dog -p cat --view rot180 --steps 1 --stages 1 --out "$work/s" \
  -q >/dev/null 2>&1 || fail "making a sample"
sample=$work/s/sample_000
original="the user's own file"

# Plants symbolic links to $2 at NAME.tmp-PID ($1 = NAME) for the next 3000 process IDs: the
# names of temporary files that follow the process ID. One process plants them all.
plant() {
  python3 - "$1" "$2" "$(cat /proc/sys/kernel/ns_last_pid)" <<'PY'
import os, sys
name, victim, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
for pid in range(last + 1, last + 3000):
    os.symlink(victim, f"{name}.tmp-{pid}")
PY
}

# 1. Temporary files: unpredictable names, created, never opened through a link.
echo "$original" >"$work/victim"
mkdir "$work/csv"
plant "$work/csv/.scores.csv" "$work/victim"
"$bin" score "$sample" --scorer "$scorer" -q --csv "$work/csv/scores.csv" >/dev/null 2>&1
rc=$?
check "score --csv: exit 0, the CSV written" '[ "$rc" -eq 0 ] && grep -q "sample_000" "$work/csv/scores.csv"'
check "score --csv: no write through a link planted at a temporary name" \
  '[ "$(cat "$work/victim")" = "$original" ]'

"$bin" gen --bundle "$bundle" -p dog -p cat --view rot180 --steps 1 --stages 1 -q \
  --embeddings-cache "$work/cache" --out "$work/g1" >/dev/null 2>&1
names=$(cd "$work/cache" && ls ./*.emb 2>/dev/null)
echo "$original" >"$work/victim2"
for f in $names; do
  rm -f "$work/cache/$f"
  plant "$work/cache/.${f#./}" "$work/victim2"
done
"$bin" gen --bundle "$bundle" -p dog -p cat --view rot180 --steps 1 --stages 1 -q \
  --embeddings-cache "$work/cache" --out "$work/g2" >/dev/null 2>&1
rc=$?
check "gen --embeddings-cache: the cache is written again (exit 0)" \
  '[ "$rc" -eq 0 ] && [ -n "$names" ] && [ "$(cd "$work/cache" && ls ./*.emb | wc -l)" -eq "$(echo "$names" | wc -l)" ]'
check "gen --embeddings-cache: no write through a link planted in the cache" \
  '[ "$(cat "$work/victim2")" = "$original" ]'

ln -s "$work/victim" "$work/link.csv"
"$bin" score "$sample" --scorer "$scorer" -q --csv "$work/link.csv" --force >/dev/null \
  2>"$work/link.err"
rc=$?
check "an output that is a link is refused, not followed or replaced (exit 2, one line)" \
  '[ "$rc" -eq 2 ] && [ "$(grep -c . "$work/link.err")" -eq 1 ] && grep -q "symbolic link" "$work/link.err" && [ -L "$work/link.csv" ] && [ "$(cat "$work/victim")" = "$original" ]'

# 2. A file size limit: one line, exit 1, nothing half-written (stderr through a pipe, which
# the limit does not apply to).
limited() { # BLOCKS ARGS...: runs the program under ulimit -f BLOCKS (of 1 KiB); sets rc, err
  local blocks=$1
  shift
  err=$( (ulimit -f "$blocks" && exec "$bin" "$@" 2>&1 >/dev/null) )
  rc=$?
}
no_leftovers() { [ -z "$(find "$1" -mindepth 1 \( -name '.*' -o -name 'sample_*' -o -name 'seed_*' -o -name 'frame_*' \) 2>/dev/null)" ]; }
one_error_line() { [ "$(printf '%s\n' "$err" | grep -v '^\[info\]' | grep -c .)" -eq 1 ] && printf '%s\n' "$err" | grep -q "^anagram: error: .*File too large"; }

mkdir "$work/fsz"
limited 0 gen --bundle "$bundle" -p dog -p cat --view rot180 --steps 1 --stages 1 -q --out "$work/fsz/gen"
check "ulimit -f: gen exits 1 with one line" '[ "$rc" -eq 1 ] && one_error_line'
check "ulimit -f: gen leaves no sample or temporary file" 'no_leftovers "$work/fsz/gen"'
# (1 KiB: the summary's short line fits, the pictures do not.)
printf '{"prompts": ["a dog", "a cat"], "views": ["rot180"], "seeds": [1]}\n' >"$work/one.jsonl"
limited 1 batch "$work/one.jsonl" --bundle "$bundle" --set steps=1 --set stages=1 -q --out "$work/fsz/batch"
check "ulimit -f: batch exits 1 naming the cause" '[ "$rc" -eq 1 ] && printf "%s" "$err" | grep -q "File too large"'
check "ulimit -f: batch leaves no sample or temporary file" 'no_leftovers "$work/fsz/batch"'
limited 0 animate "$sample" --out "$work/fsz/a.webp"
check "ulimit -f: animate exits 1 with one line, no file" '[ "$rc" -eq 1 ] && one_error_line && [ -z "$(ls -A "$work/fsz" | grep -v "^gen$\|^batch$")" ]'
limited 0 animate "$sample" --png-frames "$work/fsz/frames"
check "ulimit -f: animate --png-frames exits 1 with one line, no folder" \
  '[ "$rc" -eq 1 ] && one_error_line && [ -z "$(ls -A "$work/fsz" | grep -v "^gen$\|^batch$")" ]'
limited 0 score "$sample" --scorer "$scorer" -q --csv "$work/fsz/s.csv"
check "ulimit -f: score exits 1 with one line, no file" \
  '[ "$rc" -eq 1 ] && one_error_line && [ -z "$(ls -A "$work/fsz" | grep -v "^gen$\|^batch$")" ]'

# 3. A PNG of 16x16 pixels whose compressed data inflates to 1 GiB: read for what its pixels
# need, not what the data holds.
cp -r "$sample" "$work/bomb"
python3 - "$work/bomb/anagram.png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
z = zlib.compressobj(9)
parts = [z.compress(bytes(16 << 20)) for _ in range(64)]  # 1 GiB of zeros
parts.append(z.flush())
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
/usr/bin/time -f "%M" -o "$work/bomb.rss" "$bin" score "$work/bomb" --scorer "$scorer" -q \
  >/dev/null 2>"$work/bomb.err"
rc=$?
check "a PNG inflating to 1 GiB: score ends normally (exit 0 or 1)" '[ "$rc" -le 1 ]'
check "a PNG inflating to 1 GiB: score stays under 600 MB (peak $(tail -1 "$work/bomb.rss") KB)" \
  '[ "$(tail -1 "$work/bomb.rss")" -lt 600000 ]'

# 4. Animations: frames x size bounded before any work.
start=$(date +%s)
timeout 120 "$bin" animate "$sample" --frames 1000 --hold 1000 --display 2048 \
  --out "$work/huge.webp" >/dev/null 2>"$work/huge.err"
rc=$?
check "animate --frames 1000 --hold 1000 --display 2048: exit 2 at once, one line" \
  '[ "$rc" -eq 2 ] && [ $(($(date +%s) - start)) -lt 30 ] && [ "$(grep -c . "$work/huge.err")" -eq 1 ] && grep -q "too many" "$work/huge.err" && [ ! -e "$work/huge.webp" ]'

# 5. Truncated fonts: refused in one line or drawn without the missing parts; never a crash.
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ -f "$font" ]; then
  for bytes in 100 2000 20000 120000 400000 700000; do
    head -c "$bytes" "$font" >"$work/cut.ttf"
    "$bin" animate "$sample" --font "$work/cut.ttf" --frames 2 --hold 0 --out "$work/cut.webp" \
      --force >/dev/null 2>"$work/cut.err"
    rc=$?
    check "a font cut at $bytes bytes: exit 0, or 2 with one line (exit $rc)" \
      '[ "$rc" -eq 0 ] || { [ "$rc" -eq 2 ] && [ "$(grep -c . "$work/cut.err")" -eq 1 ]; }'
  done
else
  echo "skipped: no DejaVu Sans for the font tests"
fi

# 6. A model's warning (torch.warn) with terminal escape sequences in it.
"$maker" "$bundle" "$work/made" "$scorer" >/dev/null || fail "making the warning bundle"
"$bin" gen --bundle "$work/made/warns" -p dog -p cat --view rot180 --steps 1 --stages 1 \
  --out "$work/warned" >/dev/null 2>"$work/warn.err"
rc=$?
check "torch.warn from a model: gen still works" '[ "$rc" -eq 0 ]'
check "torch.warn from a model: shown, without an escape character reaching the terminal" \
  'grep -q "red text" "$work/warn.err" && ! grep -q $'"'"'\x1b'"'"' "$work/warn.err" && ! grep -q $'"'"'\x07'"'"' "$work/warn.err"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

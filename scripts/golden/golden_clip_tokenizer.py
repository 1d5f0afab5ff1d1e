"""Golden values of GLIDE's CLIP tokenizer for tests/test_clip_tokenizer.cpp.

The reference is glide_text2im.tokenizer.simple_tokenizer.SimpleTokenizer (a copy of OpenAI
CLIP's) as GLIDE's noise-aware CLIP uses it in glide_text2im/clip/model_creation.py:
CLIPModel.encode_prompts() pads tokenizer.encode(prompt) with
tokenizer.padded_tokens_and_len(tokens, text_encoder.max_text_len) and max_text_len = 77
(glide_text2im/clip/config.yaml).

Reproduce (glide-text2im is not a PyPI package, and its code is not part of this repository;
install it into a throw-away folder together with the ftfy it needs):
    git clone https://github.com/openai/glide-text2im /tmp/glide-src   # or any copy of it
    git -C /tmp/glide-src checkout 69b530740eb6cef69442d6180579ef5ba9ef063e
    .venv/bin/pip install --no-deps --target /tmp/glide-py /tmp/glide-src ftfy==6.3.1 wcwidth
    PYTHONPATH=/tmp/glide-py:scripts .venv/bin/python scripts/golden/golden_clip_tokenizer.py
The goldens were made with Python 3.11.2 (unicodedata 14.0.0), regex 2026.11.19, ftfy 6.3.1.
The vocabulary is models/tiny-if/bpe_simple_vocab_16e6.txt.gz when present, else the copy in
the installed glide_text2im package (the same file; its sha256 is recorded in the JSON).

Writes tests/golden/clip_tokenizer.json:
    {"context_length": 77, "start_token": 49406, "end_token": 49407, "vocab_sha256": ...,
      "cases": [{"text", "context_length", "clean": whitespace_clean(basic_clean(text)).lower(),
                "plain": encode(text), "tokens": padded ids, "length": text_len}]}

With --cpp-tables it instead prints the Unicode and HTML-entity tables that
src/clip_tokenizer.cpp embeds (generated here so that they can be regenerated, not retyped).
"""
import argparse
import hashlib
import html
import html.entities
import json
import sys
import unicodedata
from pathlib import Path

from anagram_py import paths

ROOT = Path(paths.ROOT)
OUT = ROOT / "tests" / "golden" / "clip_tokenizer.json"
VOCAB = ROOT / "models" / "tiny-if" / "bpe_simple_vocab_16e6.txt.gz"
CONTEXT = 77  # glide_text2im/clip/config.yaml: max_text_len

def _block(first, last):
    return " ".join(chr(c) for c in range(first, last + 1) if chr(c).isprintable())


CASES = [
    "a photo of a dog",
    "A Photo Of A DOG",
    "an oil painting of a snowy mountain village",
    "hello, world!!",
    "it's",
    "don't",
    "we're they've i'm you'll he'd 'sup",
    "rock'n'roll",
    "1234",
    "3.14",
    "email@example.com #tag $100 50%",
    "supercalifragilisticexpialidocious",
    "  extra   spaces\tand\nnew\r\nlines  ",
    "&amp;",
    "fish &amp;amp; chips &amp;amp;amp;amp;",
    "&lt;b&gt;bold&lt;/b&gt; &quot;q&quot; &#39;s &nbsp;x",
    "<b>bold</b> &amp;amp; co",
    "caf&eacute; &#233; &#x41; &copy2023 &ampx &notit; &bogus; &#0; &#128;",
    "café",
    "naïve",
    "Ünïcödé",
    "cafe\u0301 nai\u0308ve",
    "東京",
    "Привет, мир",
    "ΟΔΥΣΣΕΥΣ Σ ΑΣ.",
    "straße İstanbul",
    "🐶 dog",
    "",
    "   ",
    "it\u2019s \u201cquoted\u201d",
    "\ufb01sh \uff26\uff35\uff2c\uff2c\u3000\uff57\uff49\uff44\uff54\uff48 \uff11\uff12\uff13",
    "x\u00b2 \u00bd \u216b \u2460 \u03a9 \u2126 \u212b",
    "<|startoftext|>hi<|endoftext|> !<|endoftext|>",
    "hello\u0085world tab\x07bell \x1b[31mred\x1b[0m",
    "\u00a0nbsp\u00a0 \u2003em",
    "it'\u017f",
    "a very long prompt that keeps going " * 12,
    "A high-resolution photograph of an astronaut riding a horse on Mars, trending on "
    "ArtStation, 8K, octane render",
    "Pop Art of Marilyn Monroe | Andy Warhol | 1962",
    "C++ c# node.js 4k 1080p 3d-render 50/50 1/2 #1 @user :) :-( ^_^ ...",
    "'s 'S 'T 'RE 'VE 'M 'LL 'D '' '''s it'S",
    # Python's str.lower(): final sigma, dotted capital I.
    "\u0391\u03a3 \u03a3\u0391 \u0391.\u03a3 \u0391'\u03a3' \u0391\u03a31 \u0391\u03a3\u0391 "
    "\u0391\u03a3\u0308 \u03a3 \u03a3\u03a3 \u0391\u03a3\u0308\u0391 a\u03a3 \u0391\u03a3- "
    "\u1f08\u03a3 \u0386\u03a3.\u0391",
    "\u0130STANBUL \u0131i I\u0130",
    # HTML: ftfy (';' only, capitals too) and html.unescape (twice, legacy names without ';').
    "&AMP &amp &ampamp; &lt3 &gt;&gt; &#x1F436; &#X41 &#65 &#1114112; &#55296; &#xFDD0; &#11; "
    "&#13; &Eacute; &EACUTE; &SZLIG; &hellip; &mdash; &euro;5 &copy &reg &frac12;",
    "&&amp;amp; &;&#;&#x;&x; &nbsp&nbsp; &thetasym; &sigmaf; a&b c&d=1&e=2 &#8217;s &#x2019;",
    "&abcdefghijklmnopqrstuvwxyz0123456789; &lt;not a tag&gt; x<y &amp;amp; z",
    "a &amp;amp; b\n<i>x</i> &amp;amp;\nthen &amp;amp; &eacute; again",
    # ftfy's other fixes.
    "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 u\u030a E\u0301 \u0418\u0306 \u0435\u0308 "
    "\u03b1\u0301 a\u0340 \u1f71 \u2126 \u212b",
    "\x80 \x85 \x91quoted\x92 \x93dq\x94 \x96 \x97 \x99 \x81 \x8d \x9f",
    "a\x00b\x01c\x0bd\x0ce\x1bf\x7fg\u200bh\ufeffi\u206aj\ufff9k\u2028l\u2029m",
    "one\r\ntwo\rthree\u2028four\x85five \x1b[1;31mbold\x1b[0m \x1b[K \x1b[",
    "\ufb01\ufb02 \ufb00 \ufb03 \ufb04 \ufb05 \ufb06 \u0132 \u0133 \u0149 \u01c4 \u01c5 \u01c6 "
    "\u01c7 \u01c8 \u01c9 \u01ca \u01cb \u01cc \u01f1 \u01f2 \u01f3",
    "\u2018single\u2019 \u201cdouble\u201d \u201ahigh\u201b \u201e\u201f \u02bcn \u2032",
    # Other scripts.
    "\u0645\u0631\u062d\u0628\u0627 \u0661\u0662\u0663 \u0928\u092e\u0938\u094d\u0924\u0947 "
    "\u0967\u0968 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0e51 \uc548\ub155\ud558\uc138\uc694 "
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0 \u05e9\u05dc\u05d5\u05dd",
    # Every printable code point of some blocks, space-separated: checks the letter / number
    # classes, lower-casing and cleaning in bulk.
    "".join(chr(c) for c in range(0x00, 0xA0)),
    _block(0x00A0, 0x052F),
    _block(0x0600, 0x06FF) + _block(0x0900, 0x097F) + _block(0x0E00, 0x0E7F),
    _block(0x10A0, 0x11FF) + _block(0x3130, 0x318F),
    _block(0x1E00, 0x1FFF),
    _block(0x2000, 0x2BFF),
    _block(0x3000, 0x30FF) + _block(0xFF00, 0xFFEF),
]

# A few cases with a small context, to test truncation and padding at other lengths.
SMALL_CONTEXT = [("a photo of a dog", 5), ("a dog", 5), ("", 2), ("hello, world!!", 3)]


def load_reference():
    try:
        from glide_text2im.tokenizer import simple_tokenizer
    except ImportError:
        sys.exit("glide_text2im is not importable: see this script's docstring")
    path = str(VOCAB) if VOCAB.exists() else simple_tokenizer.default_bpe()
    return simple_tokenizer.SimpleTokenizer(path), path


def make_goldens():
    tok, path = load_reference()
    from glide_text2im.tokenizer import simple_tokenizer
    cases = []
    for text, ctx in [(t, CONTEXT) for t in CASES] + SMALL_CONTEXT:
        plain = tok.encode(text)
        tokens, length = tok.padded_tokens_and_len(plain, ctx)
        clean = simple_tokenizer.whitespace_clean(simple_tokenizer.basic_clean(text)).lower()
        cases.append(dict(text=text, context_length=ctx, clean=clean, plain=plain, tokens=tokens,
                          length=length))
    head = dict(context_length=CONTEXT, start_token=tok.start_token, end_token=tok.end_token,
                vocab_size=len(tok.encoder),
                vocab_sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines += ['  "cases": [', ",\n".join("    " + json.dumps(c) for c in cases), "  ]"]
    OUT.write_text("{\n" + "\n".join(lines) + "\n}\n")
    print(f"wrote {OUT} ({len(cases)} cases, vocab {path})")


# ---- --cpp-tables ------------------------------------------------------------------------------
# Code point blocks whose \p{L} / \p{N} membership and lower-casing the C++ side knows exactly:
# Latin, IPA, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai, Georgian, Hangul
# Jamo, Latin/Greek extended, punctuation and symbols, kana, CJK, Hangul syllables, full width.
BLOCKS = [(0x0000, 0x06FF), (0x0900, 0x097F), (0x0E00, 0x0E7F), (0x10A0, 0x11FF),
          (0x1E00, 0x1FFF), (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x3130, 0x318F),
          (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xFF00, 0xFFEF),
          (0x20000, 0x3FFFF)]


def _in_blocks(c):
    return any(a <= c <= b for a, b in BLOCKS)


def _ranges(pred):
    out, start = [], None
    for c in range(0x40001):
        ok = c <= 0x40000 and _in_blocks(c) and pred(c)
        if ok and start is None:
            start = c
        if not ok and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def _emit(name, ctype, rows, per_line):
    print(f"const {ctype} {name}[] = {{")
    for i in range(0, len(rows), per_line):
        print("    " + " ".join(rows[i:i + per_line]))
    print("};")


def print_cpp_tables():
    import regex
    letter, number = regex.compile(r"\p{L}"), regex.compile(r"\p{N}")
    print(f"// Generated by scripts/golden/golden_clip_tokenizer.py --cpp-tables (Python "
          f"{sys.version.split()[0]}, Unicode {unicodedata.unidata_version}, regex "
          f"{regex.__version__}).")
    print("// clang-format off")
    for name, pat in [("kLetterRanges", letter), ("kNumberRanges", number)]:
        rows = [f"{{0x{a:X}, 0x{b:X}}}," for a, b in _ranges(lambda c: bool(pat.match(chr(c))))]
        _emit(name, "Range", rows, 6)
    # Python's str.lower() (U+0130 is handled in code) and ftfy's fix_character_width (NFKC of
    # U+FF01..U+FFEF; U+3000 and U+FFE3 are handled in code) as {first, last, stride, delta}.
    lower = {c: chr(c).lower() for c in range(0x40000) if _in_blocks(c) and not 0xD800 <= c < 0xE000}
    width = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFF01, 0xFFF0)}
    for name, mapping in [("kLowerRuns", lower), ("kWidthRuns", width)]:
        runs = []
        for c, mapped in sorted(mapping.items()):
            if mapped == chr(c) or len(mapped) != 1:
                continue
            d = ord(mapped) - c
            if runs and runs[-1][3] == d and (
                    (runs[-1][2] == 0 and c - runs[-1][1] in (1, 2)) or
                    (runs[-1][2] and c - runs[-1][1] == runs[-1][2])):
                first, last, stride, _ = runs[-1]
                runs[-1] = (first, c, stride or c - last, d)
            else:
                runs.append((c, c, 0, d))
        _emit(name, "DeltaRun", [f"{{0x{a:X}, 0x{b:X}, {s or 1}, {d}}}," for a, b, s, d in runs], 3)
    # NFC, partly: singleton decompositions (outside CJK compatibility ideographs) and the
    # compositions base + one combining mark that give U+00C0..U+017F, Greek or Cyrillic letters.
    rows = []
    for c in range(0x10000):
        if 0xD800 <= c < 0xE000 or 0xF900 <= c <= 0xFAFF:
            continue
        nfc = unicodedata.normalize("NFC", chr(c))
        if nfc != chr(c) and len(nfc) == 1:
            rows.append(f"{{0x{c:X}, 0, 0x{ord(nfc):X}}},")
    for c in list(range(0xC0, 0x180)) + list(range(0x370, 0x500)):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(c):
                rows.append(f"{{0x{parts[0]:X}, 0x{parts[1]:X}, 0x{c:X}}},")
    _emit("kCompositions", "Composition", rows, 5)
    # HTML 4 entities (html.entities.name2codepoint) plus the other names that Python's
    # html.unescape also accepts without a semicolon; flag 1 = accepted without ';'; last:
    # what ftfy decodes "&NAME;" (the name in capitals) to, when html.unescape leaves it alone
    # (0: nothing; U+00DF's "SS" is handled in code).
    names = set(html.entities.name2codepoint) | {"apos"}
    names |= {k for k in html.entities.html5 if not k.endswith(";")}
    rows = []
    for n in sorted(names):
        value = html.entities.html5[n + ";"]
        assert len(value) == 1, n
        upper = 0
        if n == n.lower() and html.unescape(f"&{n.upper()};") == f"&{n.upper()};":
            upper = ord(value.upper()) if len(value.upper()) == 1 else 0
        rows.append(f'{{"{n}", 0x{ord(value):X}, {int(n in html.entities.html5)}, 0x{upper:X}}},')
    _emit("kEntities", "Entity", rows, 3)
    # Python's html.unescape: numeric references to these code points are replaced.
    rows = [f"{{0x{k:X}, 0x{ord(v):X}}}," for k, v in sorted(html._invalid_charrefs.items())]
    _emit("kInvalidCharrefs", "CharMap", rows, 6)
    print("// clang-format on")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp-tables", action="store_true",
                        help="print the tables embedded in src/clip_tokenizer.cpp")
    args = parser.parse_args()
    if args.cpp_tables:
        print_cpp_tables()
    else:
        make_goldens()


if __name__ == "__main__":
    main()

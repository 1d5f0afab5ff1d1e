#!/usr/bin/env python3
"""Golden T5 tokenisation for the C++ tokenizer tests: tests/golden/t5_tokenizer.json.

Usage (from the repository root):
    .venv/bin/python scripts/golden/golden_t5_tokenizer.py [--bundle models/tiny-if]
                                                           [--out tests/golden/t5_tokenizer.json]

For each test string (see CASES) it records what the Python reference gives:
  * input_ids / attention_mask: transformers' T5Tokenizer on the bundle's spiece.model
    (extra_ids=100, legacy=True, which is what DeepFloyd's published tokenizer config
    resolves to) called as IF's encode_prompt calls it: padding="max_length",
    max_length=77, truncation=True, add_special_tokens=True;
  * ids_no_special / pieces_no_special: the same tokenizer with add_special_tokens=False,
    no padding, no truncation;
  * sentencepiece_ids: plain sentencepiece encode() of the string, and whether the
    transformers ids (without special tokens) equal it (they differ only where the text
    contains special-token strings such as "</s>", which transformers splits out first);
  * preprocessed: diffusers' IFPipeline._text_preprocessing(text, clean_caption=False)
    (that is text.lower().strip(); the real method is called, unbound, with self=None,
    which it only uses when clean_caption=True), and the same ids for that string.

The file depends only on the committed bundle's spiece.model; rerun after rebuilding the
bundle (scripts/make_default_bundle.sh).
"""
import argparse
import hashlib
import json
import os
import sys

CASES = [
    ("plain_word", "dog"),
    ("photo_of_dog", "a photo of a dog"),
    ("sentence_period", "An oil painting of a cat sitting on a chair."),
    ("punctuation", "Hello, world! What's this? (yes) -- [no]; {maybe}: \"quoted\" 'single'"),
    ("digits", "3 apples, 12 eggs, 1.5 kg, $4.99, 2023-11-28, 10:30, 100%"),
    ("mixed_case", "ThE GiAnT rObOt WALKED into The City"),
    ("leading_trailing_spaces", "   a dog   "),
    ("multiple_spaces", "a    photo  of     a dog"),
    ("tabs_newlines", "a\tphoto\nof\r\na dog\t\n"),
    ("accents_cafe", "café"),
    ("accents_unicode", "Ünïcödé"),
    ("accents_sentence", "a naïve résumé at the café in Zürich, crème brûlée"),
    ("chinese", "一只狗"),
    ("emoji", "a dog 🐶 and a cat 🐱"),
    ("mixed_scripts", "dog 狗 perro σκύλος собака"),
    ("empty", ""),
    ("only_spaces", "    "),
    ("fullwidth_nfkc", "ＡＢＣ ｄｏｇ １２３"),
    ("ligature_nfkc", "ﬁne ﬂower ½ ²"),
    ("long_over_77_tokens", " ".join(
        ["an extremely detailed oil painting of a fluffy orange cat sitting on a wooden "
         "chair next to a window in a quiet library at sunset, by van gogh"] * 4)),
    ("symbols", "#hashtag @mention 50% off & free *today* ~ ^ | \\ / < > = + _"),
    ("underscore_and_marker", "snake_case_word and ▁ marker"),
    ("special_token_literal", "a </s> b <pad> c <extra_id_0>"),
    ("repeated_letters", "aaaaaaaaaaaa zzzzzz"),
    ("anagram_prompts", "an oil painting of people around a campfire"),
    ("single_char", "x"),
]

MAX_LENGTH = 77
EXTRA_IDS = 100


def dump_json(golden):
    """Readable JSON with one line per case (small diffs when the tokenizer changes)."""
    head = {k: v for k, v in golden.items() if k != "cases"}
    text = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    lines = [json.dumps(c, ensure_ascii=False) for c in golden["cases"]]
    return text + ',\n "cases": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--bundle", default="models/tiny-if")
    parser.add_argument("--out", default="tests/golden/t5_tokenizer.json")
    args = parser.parse_args(argv)

    import diffusers
    import sentencepiece as spm
    import transformers
    from diffusers import IFPipeline
    from transformers import T5Tokenizer

    spiece = os.path.join(args.bundle, "spiece.model")
    with open(spiece, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    tok = T5Tokenizer(vocab_file=spiece, extra_ids=EXTRA_IDS, model_max_length=MAX_LENGTH,
                      legacy=True)
    sp = spm.SentencePieceProcessor(model_file=spiece)

    def encode(text):
        padded = tok(text, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                     add_special_tokens=True)
        bare = tok(text, add_special_tokens=False)["input_ids"]
        sp_ids = sp.encode(text)
        return {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "ids_no_special": bare,
            "pieces_no_special": tok.convert_ids_to_tokens(bare),
            "sentencepiece_ids": sp_ids,
            "matches_sentencepiece": bare == sp_ids,
        }

    cases = []
    for name, text in CASES:
        pre = IFPipeline._text_preprocessing(None, text, clean_caption=False)[0]
        assert pre == text.lower().strip()
        case = {"name": name, "text": text}
        case.update(encode(text))
        case["preprocessed"] = pre
        case.update({f"preprocessed_{k}": v for k, v in encode(pre).items()})
        assert len(case["input_ids"]) == MAX_LENGTH
        cases.append(case)

    golden = {
        "description": "T5 tokenisation reference (transformers T5Tokenizer, legacy=True, "
                       "extra_ids=100) and IF text preprocessing; see the generator's docstring",
        "generator": "scripts/golden/golden_t5_tokenizer.py",
        "spiece_model": spiece,
        "spiece_sha256": digest,
        "max_length": MAX_LENGTH,
        "pad_id": sp.pad_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
        "sentencepiece_vocab_size": sp.get_piece_size(),
        "extra_ids": EXTRA_IDS,
        "tokenizer_vocab_size": len(tok),
        "legacy": True,
        "versions": {"transformers": transformers.__version__,
                     "diffusers": diffusers.__version__,
                     "sentencepiece": spm.__version__},
        "cases": cases,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(dump_json(golden))
    mismatches = [c["name"] for c in cases if not c["matches_sentencepiece"]]
    print(f"wrote {args.out}: {len(cases)} cases; transformers != sentencepiece for: "
          f"{mismatches or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

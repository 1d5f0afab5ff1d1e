// T5 tokenizer against transformers 4.35.2 T5Tokenizer (legacy) on the bundled tiny model
// (tests/golden/t5_tokenizer.json, made by scripts/golden/golden_t5_tokenizer.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/core/error.h"
#include "anagram/text/t5_tokenizer.h"

namespace anagram {
namespace {

using nlohmann::json;

const json& golden() {
  static const json j = [] {
    std::ifstream in(std::string(ANAGRAM_GOLDEN_DIR) + "/t5_tokenizer.json");
    if (!in) throw std::runtime_error("tests/golden/t5_tokenizer.json is missing");
    return json::parse(in);
  }();
  return j;
}

std::string model_path() { return std::string(ANAGRAM_DEFAULT_BUNDLE) + "/spiece.model"; }

const T5Tokenizer& tokenizer() {
  static const T5Tokenizer tok =
      T5Tokenizer::load(model_path(), golden().at("max_length").get<int>(),
                        golden().at("pad_id").get<int64_t>(), golden().at("eos_id").get<int64_t>());
  return tok;
}

std::vector<int64_t> ids(const json& j) { return j.get<std::vector<int64_t>>(); }

TEST(T5Tokenizer, VocabularyMatchesGolden) {
  EXPECT_EQ(tokenizer().vocab_size(), golden().at("sentencepiece_vocab_size").get<int64_t>());
  EXPECT_EQ(tokenizer().unk_id(), golden().at("unk_id").get<int64_t>());
  EXPECT_EQ(tokenizer().max_length(), 77);
}

TEST(T5Tokenizer, EncodeMatchesTransformers) {
  const size_t room = static_cast<size_t>(tokenizer().max_length() - 1);
  ASSERT_GE(golden().at("cases").size(), 20u);
  for (const json& c : golden().at("cases")) {
    const std::string text = c.at("text");
    SCOPED_TRACE(c.at("name").get<std::string>() + ": '" + text + "'");
    const T5Tokenizer::Encoding e = tokenizer().encode(text);
    EXPECT_EQ(e.ids, ids(c.at("input_ids")));
    EXPECT_EQ(e.attention_mask, ids(c.at("attention_mask")));
    const std::vector<int64_t> plain = ids(c.at("ids_no_special"));
    EXPECT_EQ(tokenizer().encode_plain(text), plain);
    EXPECT_EQ(e.truncated, plain.size() > room);

    // The IF pipeline's path: preprocess, then encode.
    const std::string pre = T5Tokenizer::preprocess(text);
    EXPECT_EQ(pre, c.at("preprocessed").get<std::string>());
    const T5Tokenizer::Encoding p = tokenizer().encode(pre);
    EXPECT_EQ(p.ids, ids(c.at("preprocessed_input_ids")));
    EXPECT_EQ(p.attention_mask, ids(c.at("preprocessed_attention_mask")));
    EXPECT_EQ(tokenizer().encode_plain(pre), ids(c.at("preprocessed_ids_no_special")));
  }
}

TEST(T5Tokenizer, LongPromptIsTruncatedWithEos) {
  for (const json& c : golden().at("cases")) {
    if (c.at("name") != "long_over_77_tokens") continue;
    const T5Tokenizer::Encoding e = tokenizer().encode(c.at("text"));
    EXPECT_TRUE(e.truncated);
    EXPECT_EQ(e.ids.back(), tokenizer().eos_id());
    EXPECT_EQ(std::count(e.attention_mask.begin(), e.attention_mask.end(), 1), 77);
    return;
  }
  FAIL() << "golden case long_over_77_tokens is missing";
}

TEST(T5Tokenizer, EmptyStringIsEosThenPadding) {
  const T5Tokenizer::Encoding e = tokenizer().encode("");
  std::vector<int64_t> expected(77, tokenizer().pad_id());
  expected[0] = tokenizer().eos_id();
  std::vector<int64_t> mask(77, 0);
  mask[0] = 1;
  EXPECT_EQ(e.ids, expected);
  EXPECT_EQ(e.attention_mask, mask);
  EXPECT_FALSE(e.truncated);
  EXPECT_TRUE(tokenizer().encode_plain("").empty());
  EXPECT_TRUE(tokenizer().encode_plain("   ").empty());
}

// transformers' handling of special tokens written in the text, on the tiny model with
// max_length 20 (expected ids printed by transformers 4.35.2).
TEST(T5Tokenizer, SpecialTokensInTextFollowTransformers) {
  const T5Tokenizer tok = T5Tokenizer::load(model_path(), 20);
  const auto padded = [](std::vector<int64_t> v) {
    v.resize(20, 0);
    return v;
  };
  // Surrounded by spaces, <extra_id_N> is one token: id vocab_size - 1 + 100 - N.
  EXPECT_EQ(tok.encode_plain("hello <extra_id_0> world"),
            (std::vector<int64_t>{63, 47, 29, 322, 1099, 899, 112, 868, 29, 24}));
  // Touching a word, it is glued to it and tokenized as text (single_word rule).
  EXPECT_EQ(tok.encode("hello<extra_id_0>world").ids,
            (std::vector<int64_t>{63,  47, 29, 322, 2, 47,  927, 40,  32, 2,
                                  145, 24, 2,  261, 2, 899, 112, 868, 29, 1}));
  EXPECT_EQ(tok.encode_plain("a <extra_id_99>b"),
            (std::vector<int64_t>{3, 10, 2, 47, 927, 40, 32, 2, 145, 24, 2, 918, 2, 493}));
  EXPECT_EQ(
      tok.encode_plain("</s><extra_id_0>x"),
      (std::vector<int64_t>{10, 2, 951, 7, 2, 47, 927, 40, 32, 2, 145, 24, 2, 261, 2, 10, 927}));
  // </s>, <pad>, <unk> map to their ids; a trailing </s> is not doubled.
  EXPECT_EQ(tok.encode("x </s>").ids, padded({10, 927, 1}));
  EXPECT_EQ(tok.encode("<pad><unk>").ids, padded({0, 2, 1}));
  std::string as(18 * 2, ' ');
  for (size_t i = 0; i < as.size(); i += 2) as[i] = 'a';
  const auto e18 = tok.encode(as + "</s>");  // 18 a's and </s>: fits, no second eos
  std::vector<int64_t> expected18(18, 3);
  expected18.push_back(1);
  EXPECT_EQ(e18.ids, padded(expected18));
  EXPECT_FALSE(e18.truncated);
  const auto e19 = tok.encode("a " + as + "</s>");  // 19 a's and </s>: </s> cut, eos added
  std::vector<int64_t> expected19(19, 3);
  expected19.push_back(1);
  EXPECT_EQ(e19.ids, expected19);
  EXPECT_TRUE(e19.truncated);
  // Not special tokens: out of range or non-canonical extra ids.
  for (const std::string text : {"<extra_id_100>", "<extra_id_05>", "<extra_id_1", "<s>"}) {
    for (int64_t id : tok.encode_plain(text)) EXPECT_LT(id, tok.vocab_size()) << text;
  }
}

TEST(T5Tokenizer, PreprocessIsPythonLowerStrip) {
  // Expected strings from Python 3.11: text.lower().strip().
  EXPECT_EQ(T5Tokenizer::preprocess("ΟΔΟΣ ΣΑΣ. Σ"), "οδος σας. σ");  // final sigma
  EXPECT_EQ(T5Tokenizer::preprocess("ΌΣΟΣ'Σ"), "όσοσ'ς");            // apostrophe is ignorable
  EXPECT_EQ(T5Tokenizer::preprocess("İSTANBUL"), "i\u0307stanbul");  // one char -> two
  EXPECT_EQ(T5Tokenizer::preprocess("ПРИВЕТ МИР"), "привет мир");
  EXPECT_EQ(T5Tokenizer::preprocess("\u3000 Ünïcödé ÀÉÎÕÜ ǅ \u00a0\u2003"), "ünïcödé àéîõü ǆ");
  EXPECT_EQ(T5Tokenizer::preprocess("ẞ"), "ß");
  EXPECT_EQ(T5Tokenizer::preprocess(" \t\n\x1c"), "");
  EXPECT_EQ(T5Tokenizer::preprocess("\u200bA\u200b"), "\u200ba\u200b");  // ZWSP is not space
}

template <typename F>
void expect_error(ErrorKind kind, F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(T5Tokenizer, InvalidUtf8IsRejected) {
  for (const std::string bad :
       {std::string("\xff"), std::string("caf\xc3"), std::string("\xc0\xaf"),
        std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"), std::string("a\x80z")}) {
    expect_error(
        ErrorKind::kInvalidArgument, [&] { tokenizer().encode(bad); }, "UTF-8");
    expect_error(
        ErrorKind::kInvalidArgument, [&] { tokenizer().encode_plain(bad); }, "UTF-8");
    expect_error(
        ErrorKind::kInvalidArgument, [&] { T5Tokenizer::preprocess(bad); }, "UTF-8");
  }
}

TEST(T5Tokenizer, BadModelFilesAreBundleErrors) {
  expect_error(
      ErrorKind::kBundle, [] { T5Tokenizer::load("/nonexistent/spiece.model"); }, "does not exist");
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string garbage = (dir / "anagram_test_garbage.model").string();
  {
    std::ofstream out(garbage, std::ios::binary);
    out << "this is not a protobuf \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
  }
  expect_error(
      ErrorKind::kBundle, [&] { T5Tokenizer::load(garbage); }, "SentencePiece");
  const std::string empty = (dir / "anagram_test_empty.model").string();
  { std::ofstream out(empty, std::ios::binary); }
  expect_error(
      ErrorKind::kBundle, [&] { T5Tokenizer::load(empty); }, "SentencePiece");
  std::filesystem::remove(garbage);
  std::filesystem::remove(empty);
  expect_error(
      ErrorKind::kBundle, [] { T5Tokenizer::load(model_path(), 77, 0, 5000); },
      "outside the vocabulary");
  expect_error(
      ErrorKind::kBundle, [] { T5Tokenizer::load(model_path(), 77, 1, 0); }, "expected eos_id");
  expect_error(
      ErrorKind::kBundle, [] { T5Tokenizer::load(model_path(), 1); }, "max_length");
}

}  // namespace
}  // namespace anagram

// GenerateRequest: defaults, every check that needs no model, and the JSON form that batch
// files and metadata.json use (round trip, typed, unknown keys refused).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/pipeline/request.h"
#include "core/json_fields.h"

namespace {

anagram::GenerateRequest valid() {
  anagram::GenerateRequest r;
  r.prompts = {"a dog", "a cat"};
  r.views = {"rot180"};
  return r;
}

// Expects validate() to fail with kInvalidArgument on `field`, in one line.
void expect_invalid(const anagram::GenerateRequest& r, const std::string& field) {
  try {
    r.validate();
    FAIL() << "expected an error on " << field;
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.kind(), anagram::ErrorKind::kInvalidArgument) << e.what();
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    EXPECT_LT(std::string(e.what()).size(), 400u) << e.what();
  }
}

TEST(Request, DefaultsAreThePublishedOnes) {
  const anagram::GenerateRequest r;
  EXPECT_EQ(r.steps, 30);
  EXPECT_EQ(r.guidance, 10.0);
  EXPECT_EQ(r.method, anagram::Method::kMtl);
  EXPECT_TRUE(r.antiseg && r.mtl.balance && r.mtl.rectify);
  EXPECT_FALSE(r.mtl.exact_steps_exponent || r.mtl.exact_clip_input || r.exact_concept_tokens);
  EXPECT_EQ(r.stages, 0);
  EXPECT_NO_THROW(valid().validate());
}

TEST(Request, NumbersOutOfRangeAreRefused) {
  const double inf = std::numeric_limits<double>::infinity();
  auto r = valid();
  r.steps = 0;
  expect_invalid(r, "steps");
  r = valid();
  r.steps = 100000;
  expect_invalid(r, "steps");
  for (double g : {-1.0, std::nan(""), inf, 1e9}) {
    r = valid();
    r.guidance = g;
    expect_invalid(r, "guidance");
  }
  for (double lr : {-5.0, std::nan(""), inf, 1e6}) {
    r = valid();
    r.antiseg_options.learning_rate = lr;
    expect_invalid(r, "antiseg_lr");
  }
  for (double target : {-0.1, 0.7, std::nan("")}) {
    r = valid();
    r.antiseg_options.target = target;
    expect_invalid(r, "antiseg_target");
  }
  r = valid();
  r.num_samples = 0;
  expect_invalid(r, "num_samples");
  r = valid();
  r.seed = std::numeric_limits<uint64_t>::max();
  r.num_samples = 2;
  expect_invalid(r, "seed");
  r = valid();
  r.noise_level = 1000;
  expect_invalid(r, "noise_level");
  r = valid();
  r.stages = 4;
  expect_invalid(r, "stages");
}

TEST(Request, TextIsCheckedAndQuotedInOneLine) {
  auto r = valid();
  r.prompts[1] = "\xe2\x80\x83\xc2\xa0 ";  // em space, no-break space: only white space
  expect_invalid(r, "prompts[1]");
  r = valid();
  r.prompts[0] = "a dog\nrm -rf";
  expect_invalid(r, "prompts[0]");
  r = valid();
  r.prompts[0] = "caf\xc3";  // truncated UTF-8
  expect_invalid(r, "prompts[0]");
  r = valid();
  r.prompts[0] = std::string(100000, 'a');
  expect_invalid(r, "prompts[0]");
  r = valid();
  r.prompts = {};
  expect_invalid(r, "prompts");
  r = valid();
  r.prompts = std::vector<std::string>(9, "x");
  r.views = std::vector<std::string>(9, "identity");
  expect_invalid(r, "prompts");
}

TEST(Request, ViewsAndTheirCounts) {
  auto r = valid();
  r.views = {"rot180", "flip", "negate"};
  expect_invalid(r, "views");
  r = valid();
  r.views = {"rotate_18"};
  expect_invalid(r, "views[0]");
  r = valid();
  r.view_args = {"1", "2"};
  expect_invalid(r, "view_args");
  r = valid();
  r.concepts = {"dog"};
  expect_invalid(r, "concepts");
  const auto tasks = anagram::resolve_tasks(valid());
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].view->name(), "identity");
  EXPECT_EQ(tasks[1].view->name(), "rotate_180");
}

TEST(Request, StyleIsPrependedAndStrippedAsInPython) {
  EXPECT_EQ(anagram::styled_prompt("an oil painting of", "a dog"), "an oil painting of a dog");
  EXPECT_EQ(anagram::styled_prompt("", "  a dog\xe2\x80\x83"), "a dog");
  EXPECT_EQ(anagram::styled_prompt(" ", "cat"), "cat");
}

TEST(Request, JsonRoundTrip) {
  auto r = valid();
  r.style = "a painting of";
  r.steps = 12;
  r.guidance = 7.5;
  r.seed = 18446744073709551615ull;
  r.method = anagram::Method::kBaseline;
  r.antiseg_options.target = 0.3;
  r.mtl.exact_clip_input = true;
  r.concepts = {"", "cat"};
  r.stages = 2;
  r.stage2_steps = 20;
  r.noise_level = 250;
  const nlohmann::json j = r.to_json();
  const anagram::GenerateRequest back = anagram::GenerateRequest::from_json(j);
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.seed, r.seed);
  EXPECT_EQ(back.stage2_steps, 20);
  EXPECT_FALSE(back.stage2_guidance.has_value());
}

TEST(Request, FromJsonRefusesWhatItCannotRead) {
  const auto expect = [](const std::string& text, const std::string& field) {
    try {
      anagram::GenerateRequest::from_json(nlohmann::json::parse(text));
      FAIL() << text;
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), anagram::ErrorKind::kInvalidArgument) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  expect(R"({"views": ["rot180"]})", "prompts");
  expect(R"({"prompts": ["a"], "promts": ["b"]})", "");
  expect(R"({"prompts": ["a"], "steps": 30.5})", "steps");
  expect(R"({"prompts": ["a"], "steps": "30"})", "steps");
  expect(R"({"prompts": ["a"], "steps": 1e30})", "steps");
  expect(R"({"prompts": ["a"], "seed": -1})", "seed");
  expect(R"({"prompts": ["a"], "seed": 1.5})", "seed");
  expect(R"({"prompts": [1]})", "prompts[0]");
  expect(R"({"prompts": ["a"], "method": "magic"})", "method");
  expect(R"({"prompts": ["a"], "antiseg": "yes"})", "antiseg");
  expect(R"(["a"])", "document");
}

TEST(JsonFields, ParseErrorsAreOneLineAndBounded) {
  using anagram::detail::parse_json_bounded;
  const auto kind = anagram::ErrorKind::kInvalidArgument;
  for (const std::string text : {std::string(R"({"guidance": 1e400})"), std::string("{\"a\": "),
                                 std::string(1000, '[') + std::string(1000, ']')}) {
    try {
      parse_json_bounded(text, kind, "job.json");
      FAIL() << text.substr(0, 40);
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), kind);
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("job.json", 0), 0u) << e.what();
    }
  }
  EXPECT_NO_THROW(parse_json_bounded(std::string(30, '[') + std::string(30, ']'), kind, "x"));
}

TEST(ErrorText, QuotesLongAndMultiLineTextInOneLine) {
  const std::string quoted = anagram::quote_for_error("a\nb" + std::string(1000, 'x'), 20);
  EXPECT_EQ(quoted.find('\n'), std::string::npos);
  EXPECT_LT(quoted.size(), 60u);
  EXPECT_NE(quoted.find("\\n"), std::string::npos);
  // Cut on a character boundary, never inside a UTF-8 sequence.
  const std::string cafe = anagram::quote_for_error("\xc3\xa9\xc3\xa9\xc3\xa9", 3);
  EXPECT_EQ(cafe, "\xc3\xa9\xc3\xa9... (6 bytes)");
  // Bytes that are not UTF-8 are shown escaped, so the line stays valid text.
  EXPECT_EQ(anagram::quote_for_error("caf\xc3"), "caf\\xc3");
}

}  // namespace

// Anti-segregation: the overlap loss and its gradient, concept tokens, map aggregation with
// views undone, and one optimisation step on the tiny bundle's UNet.
#include <gtest/gtest.h>

#include "anagram/core/error.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/diffusion/ddpm_scheduler.h"
#include "anagram/models/bundle.h"
#include "anagram/models/text_encoder.h"
#include "anagram/models/unet.h"
#include "tiny_bundle.h"

namespace {

using anagram::overlap_loss;

TEST(AntiSegLoss, ValuesOnSyntheticMaps) {
  // Disjoint halves: no overlap, loss = target.
  auto left = torch::zeros({8, 8});
  left.narrow(1, 0, 4).fill_(1);
  const auto right = 1 - left;
  EXPECT_NEAR(overlap_loss(torch::stack({left, right}), 0.45).item<double>(), 0.45, 1e-7);
  // Identical maps: sum(min) / sum(M_k + M_l) = 0.5.
  EXPECT_NEAR(overlap_loss(torch::stack({left, left}), 0.45).item<double>(), 0.05, 1e-7);
  // Three tasks: the mean over the three pairs (0.45, 0.05, 0.45).
  EXPECT_NEAR(overlap_loss(torch::stack({left, left, right}), 0.45).item<double>(),
              (0.45 + 0.05 + 0.45) / 3, 1e-7);
  EXPECT_DOUBLE_EQ(anagram::default_overlap_target(2), 0.45);
  EXPECT_DOUBLE_EQ(anagram::default_overlap_target(3), 0.40);
}

TEST(AntiSegLoss, GradientMatchesFiniteDifferences) {
  torch::manual_seed(1);
  const auto maps = (torch::rand({3, 6, 6}, torch::kDouble) + 0.1).requires_grad_(true);
  const double target = 0.4;
  const auto grad = torch::autograd::grad({overlap_loss(maps, target)}, {maps})[0];
  const double h = 1e-6;
  auto values = maps.detach().clone();
  for (int64_t i = 0; i < values.numel(); i += 7) {
    auto flat = values.view(-1);
    const double original = flat[i].item<double>();
    flat[i] = original + h;
    const double up = overlap_loss(values, target).item<double>();
    flat[i] = original - h;
    const double down = overlap_loss(values, target).item<double>();
    flat[i] = original;
    EXPECT_NEAR(grad.view(-1)[i].item<double>(), (up - down) / (2 * h), 1e-6) << "element " << i;
  }
}

struct AntiSegModel : ::testing::Test {
  const anagram::testing::TinyBundle& tiny = anagram::testing::TinyBundle::get();
  const anagram::Manifest* manifest_ = &tiny.manifest;
  const anagram::UNet* unet_ = &tiny.unet;
  const anagram::TextEncoder* text_ = &tiny.text;
};

TEST_F(AntiSegModel, ConceptTokensAreTheLastWord) {
  const auto& tokenizer = text_->tokenizer();
  const std::string prompt = "a photo of a dog";
  const auto positions = anagram::find_concept_tokens(tokenizer, prompt);
  const auto ids = tokenizer.encode(prompt).ids;
  const auto word = tokenizer.encode_plain("dog");
  ASSERT_EQ(positions.size(), word.size());
  for (size_t i = 0; i < word.size(); ++i) EXPECT_EQ(ids[positions[i]], word[i]);
  // A named concept, and the first of two occurrences (as the published code).
  const auto photo = anagram::find_concept_tokens(tokenizer, prompt, "photo");
  EXPECT_LT(photo.back(), positions.front());
  const auto twice = anagram::find_concept_tokens(tokenizer, "a dog and a dog");
  EXPECT_LT(twice.front(), 3);
  EXPECT_EQ(anagram::last_word("  an oil painting of a cat "), "cat");
  EXPECT_THROW(anagram::find_concept_tokens(tokenizer, prompt, "giraffe"), anagram::Error);
}

TEST_F(AntiSegModel, MapsAreAggregatedWithViewsUndone) {
  const std::vector<anagram::ViewPtr> views = {anagram::make_view("identity"),
                                               anagram::make_view("rotate_180")};
  const anagram::ViewStack maps_views(views, 4, 4, torch::kCPU);
  // Two layers, two tasks, 16 queries, 5 text columns; concept = column 2 for both tasks.
  auto attention = torch::rand({2, 2, 16, 5});
  const auto mask = anagram::concept_mask({{2}, {2}}, 5);
  const auto maps = anagram::aggregate_concept_maps(attention, mask, maps_views);
  const auto column = attention.select(3, 2).sum(0).view({2, 4, 4});  // layers summed
  EXPECT_TRUE(torch::allclose(maps[0], column[0]));
  EXPECT_TRUE(torch::allclose(maps[1], column[1].flip({0, 1})));  // rotate_180 undone
}

TEST_F(AntiSegModel, OneStepLowersTheOverlapLossAtTheNextTimestep) {
  const std::vector<anagram::ViewPtr> views = {anagram::make_view("identity"),
                                               anagram::make_view("rotate_180")};
  const int64_t r = manifest_->stage(1).unet.attention->query_resolution;
  const anagram::ViewStack image_views(views, 64, 64, torch::kCPU);
  const anagram::ViewStack map_views(views, r, r, torch::kCPU);
  const std::vector<std::string> prompts = {"a photo of a dog", "a photo of a cat"};
  const auto mask =
      anagram::concept_mask({anagram::find_concept_tokens(text_->tokenizer(), prompts[0]),
                             anagram::find_concept_tokens(text_->tokenizer(), prompts[1])},
                            manifest_->tokenizer.max_length);
  anagram::AntiSegOptions options;  // the published learning rate, 5
  const anagram::UNet& unet = *unet_;
  anagram::AntiSegregation antiseg(
      [&](const torch::Tensor& x, int64_t t, const torch::Tensor& states) {
        return unet.forward_with_attention(x, t, states).attention;
      },
      image_views, map_views, text_->encode(prompts), mask, options, 30);
  EXPECT_EQ(antiseg.steps(), 26);
  torch::manual_seed(3);
  const auto x = torch::randn({1, 3, 64, 64});
  const int64_t next_t = 924;
  torch::NoGradGuard no_grad;  // the sampler's context: the hook turns gradients on itself
  const double before = antiseg.evaluate(x, next_t).first.item<double>();
  const auto updated = antiseg(x, 0, next_t);
  ASSERT_EQ(antiseg.records().size(), 1u);
  EXPECT_NEAR(antiseg.records()[0].loss.item<double>(), before, 1e-5);
  EXPECT_FALSE(torch::equal(updated, x));
  EXPECT_FALSE(updated.requires_grad());
  const double after = antiseg.evaluate(updated, next_t).first.item<double>();
  EXPECT_LT(after, before);
  // After the K-th step the hook leaves x alone.
  EXPECT_TRUE(torch::equal(antiseg(x, 26, next_t), x));
}

// The method on an analytic dummy model: task b's concept attention is sigmoid of channel b
// of what it sees (its view of x), so after the views are undone the maps are sigmoid(x[0])
// and sigmoid(x[1]); the loss is then known in closed form, and one step must lower it.
TEST(AntiSegDummy, OneStepLowersAClosedFormLoss) {
  const std::vector<anagram::ViewPtr> views = {anagram::make_view("identity"),
                                               anagram::make_view("rotate_180")};
  const anagram::ViewStack stack(views, 8, 8, torch::kCPU);  // images and maps are 8x8
  const int64_t tokens = 4, concept_column = 1;
  int calls = 0;
  const anagram::AttentionProbe probe = [&](const torch::Tensor& x, int64_t t,
                                            const torch::Tensor& states) {
    ++calls;
    EXPECT_EQ(t, 500);
    EXPECT_EQ(states.size(0), x.size(0));  // the conditional half only
    const int64_t b = x.size(0);
    auto attention = torch::zeros({1, b, 64, tokens});
    std::vector<torch::Tensor> columns;
    for (int64_t k = 0; k < b; ++k) columns.push_back(torch::sigmoid(x[k][k]).reshape({64}));
    attention.select(3, concept_column).copy_(torch::stack(columns));
    return attention + 0 * x.sum();  // keeps the graph to x
  };
  const auto mask = anagram::concept_mask({{concept_column}, {concept_column}}, tokens);
  anagram::AntiSegOptions options;
  options.learning_rate = 0.5;
  anagram::AntiSegregation antiseg(probe, stack, stack, torch::zeros({2, tokens, 3}), mask, options,
                                   30);
  torch::manual_seed(7);
  const auto x = torch::randn({1, 3, 8, 8});
  const auto closed_form = [](const torch::Tensor& image) {
    const auto m0 = torch::sigmoid(image[0][0]), m1 = torch::sigmoid(image[0][1]);
    const double overlap = (torch::minimum(m0, m1).sum() / (m0 + m1).sum()).item<double>();
    return std::abs(0.45 - overlap);
  };
  torch::NoGradGuard no_grad;
  const double before = antiseg.evaluate(x, 500).first.item<double>();
  EXPECT_NEAR(before, closed_form(x), 1e-6);
  const auto updated = antiseg(x, 0, 500);
  EXPECT_NEAR(closed_form(updated), antiseg.evaluate(updated, 500).first.item<double>(), 1e-6);
  EXPECT_LT(closed_form(updated), before);
  EXPECT_TRUE(torch::equal(updated[0][2], x[0][2]));  // channel 2 reaches no map
  EXPECT_EQ(calls, 3);
}

TEST(AntiSegOptions, StepsScaleWithTheSchedule) {
  anagram::AntiSegOptions options;
  EXPECT_EQ(options.resolved_steps(30), 26);
  EXPECT_EQ(options.resolved_steps(10), 9);
  EXPECT_EQ(options.resolved_steps(60), 52);
  options.steps = 5;
  EXPECT_EQ(options.resolved_steps(3), 3);
  EXPECT_EQ(options.resolved_steps(30), 5);
}

}  // namespace

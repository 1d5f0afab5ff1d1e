// Factorized views (views/factor.h): every filter against the published code (golden values
// from torchvision's gaussian_blur and the published kernels,
// scripts/golden/golden_factor_views.py) at 64 and 256, the decompositions summing to the identity
// at every size, the registry and the request rules (one kind per request; balancing falls back).
#include <gtest/gtest.h>

#include "anagram/core/error.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/pipeline/plan.h"
#include "anagram/views/factor.h"
#include "golden_io.h"

namespace {

using anagram::FilterStack;
using anagram::make_view;
using anagram::testing::max_abs_diff;

struct FactorGolden : ::testing::Test {
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, torch::Tensor>(
        anagram::testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/factor_views.pt"));
    // The estimates the script drew: one CPU generator seeded 0, 64x64 then 256x256.
    auto generator = at::detail::createCPUGenerator(0);
    eps64_ = new torch::Tensor(at::randn({1, 3, 64, 64}, generator));
    eps256_ = new torch::Tensor(at::randn({1, 3, 256, 256}, generator));
  }
  static void TearDownTestSuite() {
    delete golden_;
    delete eps64_;
    delete eps256_;
  }
  static std::map<std::string, torch::Tensor>* golden_;
  static torch::Tensor* eps64_;
  static torch::Tensor* eps256_;
};
std::map<std::string, torch::Tensor>* FactorGolden::golden_ = nullptr;
torch::Tensor* FactorGolden::eps64_ = nullptr;
torch::Tensor* FactorGolden::eps256_ = nullptr;

const char* const kViews[] = {
    "low_pass",  "high_pass", "triple_low_pass", "triple_medium_pass", "triple_high_pass",
    "grayscale", "color",     "motion",          "motion_res",         "scale"};

TEST_F(FactorGolden, FiltersMatchThePublishedViews) {
  ASSERT_TRUE(torch::equal(eps64_->select(1, 0)[0][0], golden_->at("eps_64_row0")));
  for (const char* name : kViews) {
    const FilterStack at64({make_view(name)}, 64, torch::kCPU);
    EXPECT_LT(max_abs_diff(at64.apply_each(*eps64_), golden_->at(std::string(name) + "_64")), 2e-6)
        << name << " at 64";
    const FilterStack at256({make_view(name)}, 256, torch::kCPU);
    const torch::Tensor top = at256.apply_each(*eps256_).narrow(2, 0, 8);
    EXPECT_LT(max_abs_diff(top, golden_->at(std::string(name) + "_256")), 2e-6)
        << name << " at 256";
  }
}

// The components of each decomposition sum to the estimate, at every size the program uses.
TEST(FactorViews, DecompositionsSumToTheIdentity) {
  const std::vector<std::vector<std::string>> decompositions = {
      {"low_pass", "high_pass"},
      {"triple_low_pass", "triple_medium_pass", "triple_high_pass"},
      {"grayscale", "color"},
      {"motion", "motion_res"},
      {"scale", "scale"}};
  for (const int64_t size : {32, 64, 256}) {
    torch::manual_seed(size);
    const torch::Tensor x = torch::randn({1, 3, size, size});
    for (const auto& names : decompositions) {
      std::vector<anagram::ViewPtr> views;
      for (const auto& name : names) views.push_back(make_view(name));
      const auto n = static_cast<int64_t>(views.size());
      const FilterStack stack(views, size, torch::kCPU);
      const torch::Tensor sum = stack.apply_each(x.expand({n, 3, size, size}).contiguous()).sum(0);
      EXPECT_LT(max_abs_diff(sum, x[0]), 1e-5) << names[0] << " at " << size;
      EXPECT_TRUE(anagram::filters_sum_to_identity(views, size)) << names[0];
    }
    // Two hybrids of different sigma, or one component alone, are not a decomposition.
    EXPECT_FALSE(anagram::filters_sum_to_identity(
        {make_view("low_pass", "1"), make_view("high_pass", "3")}, size));
    EXPECT_FALSE(anagram::filters_sum_to_identity({make_view("grayscale")}, size));
  }
}

// The model's input is not changed, and each view's rendering is what its viewer sees.
TEST(FactorViews, InputUnchangedAndRenderings) {
  const auto low = make_view("low_pass");
  EXPECT_EQ(low->kind(), anagram::ViewKind::kFactor);
  EXPECT_EQ(make_view("rot180")->kind(), anagram::ViewKind::kPermutation);
  const torch::Tensor x = torch::randn({3, 64, 64});
  EXPECT_TRUE(torch::equal(low->apply(x), x));
  const FilterStack stack({make_view("grayscale"), make_view("color")}, 64, torch::kCPU);
  const torch::Tensor seen = stack.render_each(x);
  EXPECT_TRUE(torch::allclose(seen[0][0], x.mean(0)));
  EXPECT_TRUE(torch::equal(seen[1], x));
}

TEST(FactorViews, ArgumentsAndSizesAreChecked) {
  EXPECT_EQ(make_view("low_pass", "3")->spec(), "low_pass:3");
  EXPECT_EQ(make_view("motion")->spec(), "motion:7");
  EXPECT_THROW(make_view("low_pass", "-1"), anagram::Error);
  EXPECT_THROW(make_view("scale", "nan"), anagram::Error);
  EXPECT_THROW(make_view("scale", "1000"), anagram::Error);
  EXPECT_NO_THROW(make_view("scale", "-6.5"));  // the published negations
  EXPECT_THROW(make_view("grayscale", "2"), anagram::Error);
  EXPECT_THROW(make_view("motion", "2"), anagram::Error);
  EXPECT_THROW(FilterStack({make_view("low_pass")}, 2, torch::kCPU), anagram::Error);  // no kernel
  EXPECT_NO_THROW(FilterStack({make_view("low_pass")}, 32, torch::kCPU));
  EXPECT_NO_THROW(make_view("motion")->check_size(16, 16));  // the input side: the identity
  EXPECT_THROW(FilterStack({make_view("rot180")}, 64, torch::kCPU), anagram::Error);
}

// A request takes views of one kind; factorized views sum, and balancing falls back with a note.
TEST(FactorViews, PlansSumFactorizedViewsAndRefuseMixedKinds) {
  const anagram::Manifest manifest = anagram::read_manifest(ANAGRAM_DEFAULT_BUNDLE);
  anagram::GenerateRequest r;
  r.prompts = {"a cat", "a dog"};
  r.views = {"low_pass", "high_pass"};
  const anagram::GenerationPlan plan = anagram::plan_generation(r, manifest);
  EXPECT_TRUE(plan.factorized());
  EXPECT_FALSE(plan.balance);
  // Factorized views filter pixels, not latents: the default cascade stops before stage III.
  EXPECT_EQ(plan.num_stages(), 2);
  ASSERT_EQ(plan.notes.size(), 2u);
  EXPECT_NE(plan.notes[0].find("stopping after stage 2"), std::string::npos);
  EXPECT_NE(plan.notes[1].find("balancing is not defined"), std::string::npos);
  r.views = {"low_pass", "rot180"};
  try {
    anagram::plan_generation(r, manifest);
    ADD_FAILURE() << "mixed kinds accepted";
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.field(), "views[1]");
  }
  r.views = {"high_pass"};  // the first prompt would get the identity, a permutation
  EXPECT_THROW(anagram::plan_generation(r, manifest), anagram::Error);
}

// Factorized components are summed; rectification compares the sum with the unfiltered
// estimates, so components of one estimate come back as that estimate (c = 1).
TEST(FactorViews, CombinersSumComponentsAndRectifyAgainstTheEstimates) {
  torch::manual_seed(3);
  const torch::Tensor eps = torch::randn({1, 3, 64, 64});
  const FilterStack stack({make_view("low_pass"), make_view("high_pass")}, 64, torch::kCPU);
  anagram::TaskPredictions tasks;
  tasks.unfiltered_eps = eps.expand({2, 3, 64, 64}).contiguous();
  tasks.eps = stack.apply_each(tasks.unfiltered_eps);
  tasks.variance = torch::randn({2, 3, 64, 64});
  const auto baseline = anagram::MeanCombiner(anagram::Reduction::kSum).combine(tasks);
  EXPECT_LT(max_abs_diff(baseline.eps, eps), 1e-5);
  EXPECT_LT(max_abs_diff(baseline.variance[0], tasks.variance.mean(0)), 1e-6);
  anagram::MtlOptions options;
  options.balance = false;
  const anagram::MultiTaskCombiner mtl(options, {}, anagram::Reduction::kSum);
  const auto out = mtl.combine(tasks);
  EXPECT_NEAR(out.scale.item<double>(), 1.0, 1e-5);
  EXPECT_LT(max_abs_diff(out.eps, eps), 1e-5);
  EXPECT_TRUE(torch::equal(out.weights, torch::ones({2})));
  // Two independent estimates: the sum's scale restores their own mean square.
  tasks.unfiltered_eps = torch::randn({2, 3, 64, 64}) * 2;
  tasks.eps = stack.apply_each(tasks.unfiltered_eps);
  const auto independent = mtl.combine(tasks);
  EXPECT_NEAR(independent.eps.pow(2).mean().item<double>(),
              tasks.unfiltered_eps.pow(2).mean().item<double>(), 1e-3);
  EXPECT_THROW(anagram::MultiTaskCombiner(
                   anagram::MtlOptions{}, [](const torch::Tensor& x, int64_t) { return x; },
                   anagram::Reduction::kSum),
               anagram::Error);
}

}  // namespace

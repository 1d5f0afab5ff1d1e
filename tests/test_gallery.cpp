// `anagram gallery`: escaping of hostile prompts and folder names, URLs of pictures, the summary
// plot's numbers, cards read from sample folders, their groups and order, scores matched to
// cards, refusals of bad scores files, and the whole command (make_gallery): where the page may
// be written (never through a link, never over a file it did not make unless forced) and bad
// folders. The page in a browser: tests/gallery_test.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "anagram/core/error.h"
#include "anagram/eval/gallery.h"
#include "anagram/io/image_io.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The data-key attributes of the page's cards, in page order.
std::vector<std::string> card_keys(const std::string& html) {
  std::vector<std::string> keys;
  const std::regex key("<article class=\"card\" data-key=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), key); it != std::sregex_iterator();
       ++it) {
    keys.push_back((*it)[1]);
  }
  return keys;
}

class GalleryFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("anagram_gallery_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A sample folder as `gen` writes it, as far as the gallery reads it.
  fs::path add_sample(const std::string& name, const std::vector<std::string>& prompts,
                      uint64_t seed, Method method = Method::kMtl) {
    const fs::path folder = root_ / name;
    fs::create_directories(folder);
    GenerateRequest request;
    request.prompts = prompts;
    request.views = {"rot180"};
    request.method = method;
    RgbImage picture{4, 4, std::vector<uint8_t>(48, 128)};
    write_file_atomic(folder / "anagram.png", encode_png(picture));
    write_file_atomic(folder / "sheet.png", encode_png(picture));
    const nlohmann::json metadata = {
        {"request", request.to_json()},
        {"seed", seed},
        {"files",
         {{{"size", 4}, {"anagram", "anagram.png"}, {"sheet", "sheet.png"}, {"views", {}}}}}};
    std::ofstream(folder / "metadata.json") << metadata.dump(2);
    return folder;
  }

  fs::path root_;
};

TEST(GalleryText, EscapesHostileText) {
  EXPECT_EQ(html_escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
  EXPECT_EQ(html_escape("\" onerror=\"x & y"), "&quot; onerror=&quot;x &amp; y");
  EXPECT_EQ(html_escape("caf\xc3\xa9 \xf0\x9f\x90\xb6"), "caf\xc3\xa9 \xf0\x9f\x90\xb6");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(html_escape("a\xff"
                        "b"),
            "a" + fffd + "b");                                 // stray byte
  EXPECT_EQ(html_escape("\xc0\xbc"), fffd + fffd);             // overlong '<'
  EXPECT_EQ(html_escape("\xed\xa0\x80"), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(html_escape(std::string("a\0b\x1b", 4)), "a" + fffd + "b" + fffd);
  EXPECT_EQ(html_escape("tab\tnew\nline"), "tab\tnew\nline");
}

TEST(GalleryText, UrlEncodesPaths) {
  EXPECT_EQ(url_path("pair1/seed_000007"), "pair1/seed_000007");
  EXPECT_EQ(url_path("a b/c#d?e%f"), "a%20b/c%23d%3Fe%25f");
  EXPECT_EQ(url_path("x\"><script>/'y'"), "x%22%3E%3Cscript%3E/%27y%27");
  EXPECT_EQ(url_path("../runs/caf\xc3\xa9"), "../runs/caf%C3%A9");
  EXPECT_EQ(url_path("."), "");
  EXPECT_EQ(url_path("/tmp/a b"), "/tmp/a%20b");
}

TEST(GallerySummary, AxisScale) {
  const AxisScale a = axis_scale(0.1, 0.4);
  EXPECT_NEAR(a.step, 0.1, 1e-12);
  EXPECT_NEAR(a.low, 0.1, 1e-12);
  EXPECT_NEAR(a.high, 0.4, 1e-12);
  EXPECT_NEAR(a.position(0.2, 190, 250), 190 + 250.0 / 3, 1e-9);
  const AxisScale b = axis_scale(0.503, 0.547);
  EXPECT_NEAR(b.step, 0.01, 1e-12);
  EXPECT_NEAR(b.low, 0.50, 1e-12);
  EXPECT_NEAR(b.high, 0.55, 1e-12);
  const AxisScale flat = axis_scale(0.5, 0.5);  // one sample: intervals of zero width
  EXPECT_NEAR(flat.step, 0.002, 1e-12);
  EXPECT_NEAR(flat.low, 0.494, 1e-12);
  EXPECT_NEAR(flat.high, 0.506, 1e-12);
}

TEST(GallerySummary, PlotNumbers) {
  GroupSummary g;
  g.group = "mtl";
  g.samples = 20;
  g.alignment_mean = {0.2, {0.1, 0.3}};
  g.alignment_q90 = {0.35, {0.3, 0.4}};
  g.concealment_mean = {0.52, {0.5, 0.54}};
  g.concealment_q90 = {0.6, {0.55, 0.7}};
  GroupSummary hostile = g;
  hostile.group = "<script>x</script>";
  const std::string svg = summary_svg({g, hostile});
  ASSERT_EQ(svg.rfind("<svg", 0), 0u);
  // Alignment axis 0.1..0.4 over 250 units from x = 190: the mean 0.2 at 273.3, its interval
  // from 190.0 to 356.7, the rows' centres at 40 + 28 (r + 0.5), the mean 5 above.
  EXPECT_NE(svg.find("<circle cx=\"273.3\" cy=\"49.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("<line x1=\"190.0\" y1=\"49.0\" x2=\"356.7\" y2=\"49.0\""), std::string::npos);
  // The 0.9 quantile 0.35: a square of side 8 around x = 190 + 250 * 0.25 / 0.3 = 398.3.
  EXPECT_NE(svg.find("<rect x=\"394.3\" y=\"55.0\""), std::string::npos);
  // Concealment axis 0.5..0.7 (step 0.05) from x = 190 + 250 + 56: the mean 0.52 at 521.0.
  EXPECT_NE(svg.find("<circle cx=\"521.0\" cy=\"49.0\""), std::string::npos);
  EXPECT_NE(svg.find("<title>mtl: mean A 0.2000 [0.1000, 0.3000]</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>mtl: 0.9 quantile C 0.6000 [0.5500, 0.7000]</title>"),
            std::string::npos);
  EXPECT_NE(svg.find(">0.1</text>"), std::string::npos);
  EXPECT_NE(svg.find(">0.4</text>"), std::string::npos);
  EXPECT_NE(svg.find(">0.55</text>"), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;x&lt;/script&gt; (20)"), std::string::npos);
  EXPECT_EQ(summary_svg({}), "");
}

TEST_F(GalleryFolder, CardsGroupsAndOrder) {
  add_sample("dog-cat/seed_000001", {"a dog", "a cat"}, 1);
  add_sample("dog-cat/seed_000000", {"a dog", "a cat"}, 0);
  add_sample("dog-cat-base/seed_000000", {"a dog", "a cat"}, 0, Method::kBaseline);
  add_sample("ape/seed_000003", {"an ape", "a bee"}, 3);
  std::vector<GalleryCard> cards;
  for (const auto& folder : find_sample_folders({root_}))
    cards.push_back(read_gallery_card(folder));
  ASSERT_EQ(cards.size(), 4u);
  EXPECT_EQ(cards[0].prompts, (std::vector<std::string>{"an ape", "a bee"}));
  EXPECT_EQ(cards[0].views, (std::vector<std::string>{"identity", "rotate_180"}));
  EXPECT_EQ(cards[0].seed, 3u);
  EXPECT_EQ(cards[0].method, "mtl");
  ASSERT_EQ(cards[0].sheets.size(), 1u);
  EXPECT_EQ(cards[0].sheets[0], (std::pair<int, std::string>{4, "sheet.png"}));
  // Groups by prompts (byte order: "a dog" < "an ape"), then views, then method.
  const auto groups = group_cards(cards);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].method, "baseline");
  EXPECT_EQ(groups[1].method, "mtl");
  EXPECT_EQ(groups[1].cards.size(), 2u);
  EXPECT_EQ(groups[2].prompts[0], "an ape");
  const std::string html = render_gallery(cards, {root_, "t", nullptr});
  EXPECT_EQ(count(html, "<article class=\"card\""), 4u);
  EXPECT_EQ(count(html, "<section class=\"group\""), 3u);
  EXPECT_EQ(card_keys(html),
            (std::vector<std::string>{"dog-cat-base/seed_000000", "dog-cat/seed_000000",
                                      "dog-cat/seed_000001", "ape/seed_000003"}));
  EXPECT_NE(html.find("src=\"dog-cat/seed_000001/sheet.png\""), std::string::npos);
  EXPECT_NE(html.find("not scored"), std::string::npos);
  EXPECT_NE(html.find("data-sort=\"alignment\" aria-pressed=\"false\" disabled"),
            std::string::npos);
  // Pictures relative to a page elsewhere.
  const std::string elsewhere = render_gallery(cards, {root_ / "dog-cat", "t", nullptr});
  EXPECT_NE(elsewhere.find("src=\"../ape/seed_000003/sheet.png\""), std::string::npos);
}

TEST_F(GalleryFolder, HostilePromptsAndFolderNames) {
  const std::string prompt = "<img src=x onerror=alert(1)> \"quoted\" & 'single'";
  const std::string name = "x\"><script>alert(2)<\\script>&'";
  add_sample(name, {prompt, "</title><script>alert(3)</script>"}, 5);
  std::vector<GalleryCard> cards = {read_gallery_card(root_ / name)};
  GalleryScores scores;
  scores.scorer = "<b>scorer</b>";
  GroupSummary g;
  g.group = "mtl\"><script>";
  g.samples = 1;
  scores.summary = {g};
  const std::string html = render_gallery(cards, {root_, "</title><script>alert(4)", &scores});
  EXPECT_EQ(html.find("<img src=x"), std::string::npos);
  EXPECT_EQ(html.find("alert(1)>"), std::string::npos);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_EQ(html.find("<b>scorer"), std::string::npos);
  EXPECT_EQ(count(html, "<script"), 1u);  // the page's own
  EXPECT_NE(
      html.find("&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &amp; &#39;single&#39;"),
      std::string::npos);
  EXPECT_NE(html.find("data-key=\"x%22%3E%3Cscript%3Ealert%282%29%3C%5Cscript%3E%26%27\""),
            std::string::npos);
  EXPECT_NE(html.find("x&quot;&gt;&lt;script&gt;alert(2)&lt;\\script&gt;&amp;&#39;</a>"),
            std::string::npos);
  // Only the page's own script and style may run: the policy names their hashes.
  EXPECT_NE(html.find("script-src 'sha256-"), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
}

TEST_F(GalleryFolder, ScoresMatchCards) {
  const fs::path a = add_sample("run/j/seed_000001", {"a dog", "a cat"}, 1);
  const fs::path b = add_sample("run/j/seed_000002", {"a dog", "a cat"}, 2);
  const fs::path c = add_sample("run/k/seed_000001", {"a dog", "a cat"}, 1);
  std::vector<GalleryCard> cards = {read_gallery_card(a), read_gallery_card(b),
                                    read_gallery_card(c)};
  GalleryScores scores;
  // a: the same folder; b: scored elsewhere (a copy of run/), matched by its last components;
  // c: a seed that disagrees, so no score.
  scores.samples.push_back({a.string(), 1, {"a dog", "a cat"}, {0.25, 0.6, true}});
  scores.samples.push_back({"/elsewhere/run/j/seed_000002", 2, {"a dog", "a cat"}, {0.1, 0.5}});
  scores.samples.push_back({"/elsewhere/run/k/seed_000001", 9, {"a dog", "a cat"}, {0.3, 0.5}});
  EXPECT_EQ(attach_scores(cards, scores, root_ / "run"), 2u);
  ASSERT_TRUE(cards[0].score && cards[1].score);
  EXPECT_DOUBLE_EQ(cards[0].score->alignment, 0.25);
  EXPECT_TRUE(cards[0].score->selected);
  EXPECT_DOUBLE_EQ(cards[1].score->alignment, 0.1);
  EXPECT_FALSE(cards[2].score);
  // Only the sample folder's own name in common is not enough for a card two levels down.
  scores.samples = {{"/other/seed_000002", 2, {"a dog", "a cat"}, {0.1, 0.5}}};
  EXPECT_EQ(attach_scores(cards, scores, root_ / "run"), 0u);
  const std::string html = render_gallery(cards, {root_ / "run", "t", &scores});
  EXPECT_EQ(count(html, "data-alignment="), 0u);
}

TEST_F(GalleryFolder, ReadsWhatScoreWrites) {
  std::vector<ScoredSample> samples(3);
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i].folder = root_ / ("seed_" + std::to_string(i));
    samples[i].group = "mtl";
    samples[i].seed = i;
    samples[i].prompts = {"a dog", "a cat"};
    samples[i].score.alignment = 0.1 * static_cast<double>(i);
    samples[i].score.concealment = 0.5;
  }
  ScorerManifest manifest;
  manifest.name = "tiny";
  const fs::path file = root_ / "scores.json";
  std::ofstream(file) << scores_json(samples, summarize_scores(samples, 50), manifest).dump(2);
  const GalleryScores scores = read_gallery_scores(file);
  EXPECT_EQ(scores.scorer, "tiny");
  ASSERT_EQ(scores.samples.size(), 3u);
  EXPECT_DOUBLE_EQ(scores.samples[2].score.alignment, 0.2);
  ASSERT_EQ(scores.summary.size(), 1u);
  EXPECT_EQ(scores.summary[0].samples, 3u);
  EXPECT_NEAR(scores.summary[0].alignment_mean.value, 0.1, 1e-12);
}

TEST_F(GalleryFolder, RefusesBadScoresFiles) {
  const auto refused = [&](const std::string& text, const std::string& needle) {
    const fs::path file = root_ / "bad.json";
    std::ofstream(file) << text;
    try {
      read_gallery_scores(file, 4096);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused("not json", "scores file");
  refused(std::string(5000, ' ') + "{}", "at most 4096");
  refused("{\"scorer\": {\"name\": \"x\"}}", "samples");
  const std::string sample =
      "{\"folder\": \"a\", \"seed\": 1, \"alignment\": 0.1, \"concealment\": 0.5}";
  refused("{\"scorer\": {\"name\": \"x\"}, \"samples\": [" + sample + "]}", "summary");
  refused("{\"scorer\": {\"name\": \"x\"}, \"samples\": [{\"folder\": 3}]}", "samples[0].folder");
  refused("{\"scorer\": {\"name\": \"x\"}, \"samples\": [" +
              std::string(sample).replace(sample.find("0.1"), 3, "7") + "]}",
          "alignment");
  refused(std::string(100, '[') + std::string(100, ']'), "scores file");
  try {
    read_gallery_scores(root_ / "missing.json");
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
  }
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void expect_refused(const GalleryOptions& options, const std::string& needle) {
  try {
    make_gallery(options);
    ADD_FAILURE() << "accepted, expected: " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

TEST_F(GalleryFolder, MakesThePageBesideTheSamples) {
  add_sample("job/seed_000000", {"a dog", "a cat"}, 0);
  add_sample("job/seed_000001", {"a dog", "a cat"}, 1);
  add_sample("base/seed_000000", {"a dog", "a cat"}, 0, Method::kBaseline);
  fs::create_directories(root_ / "job" / "not-a-sample");
  GalleryOptions options;
  options.root = root_;
  const GalleryResult made = make_gallery(options);
  EXPECT_EQ(made.page, root_ / "index.html");
  EXPECT_EQ(made.target, PageTarget::kNew);
  EXPECT_EQ(made.cards, 3u);
  EXPECT_TRUE(made.unreadable.empty());
  const std::string html = read_text(made.page);
  EXPECT_EQ(count(html, "<article class=\"card\""), 3u);
  EXPECT_EQ(count(html, "<section class=\"group\""), 2u);
  EXPECT_NE(html.find("src=\"job/seed_000001/sheet.png\""), std::string::npos);
  EXPECT_EQ(html.find(root_.string()), std::string::npos);  // nothing absolute
  EXPECT_TRUE(is_gallery_page(made.page));
  // A second run replaces its own page without --force.
  add_sample("job/seed_000002", {"a dog", "a cat"}, 2);
  const GalleryResult again = make_gallery(options);
  EXPECT_EQ(again.target, PageTarget::kOwnPage);
  EXPECT_EQ(count(read_text(made.page), "<article class=\"card\""), 4u);
}

TEST_F(GalleryFolder, NeverOverwritesWhatItDidNotMake) {
  add_sample("job/seed_000000", {"a dog", "a cat"}, 0);
  GalleryOptions options;
  options.root = root_;
  options.out = root_ / "notes.html";
  std::ofstream(options.out) << "<!doctype html>\n<p>my notes</p>\n";
  expect_refused(options, "pass --force");
  EXPECT_EQ(read_text(options.out), "<!doctype html>\n<p>my notes</p>\n");
  EXPECT_FALSE(is_gallery_page(options.out));
  options.force = true;
  EXPECT_EQ(make_gallery(options).target, PageTarget::kForced);
  EXPECT_TRUE(is_gallery_page(options.out));
}

TEST_F(GalleryFolder, RefusesASymlinkedPage) {
  add_sample("job/seed_000000", {"a dog", "a cat"}, 0);
  const fs::path target = root_ / "elsewhere.html";
  std::ofstream(target) << "keep me";
  fs::create_symlink(target, root_ / "index.html");
  GalleryOptions options;
  options.root = root_;
  expect_refused(options, "symbolic link");
  options.force = true;  // not even when forced
  expect_refused(options, "symbolic link");
  // A link to a gallery page made earlier is refused too: it is not the page, it points at one.
  fs::remove(root_ / "index.html");
  options.out = target;
  std::ofstream(target) << "";
  make_gallery(options);
  fs::create_symlink(target, root_ / "index.html");
  options.out.clear();
  options.force = false;
  expect_refused(options, "symbolic link");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(root_ / "index.html")));
}

TEST_F(GalleryFolder, RefusesBadFolders) {
  GalleryOptions options;
  options.root = root_ / "missing";
  options.out = root_ / "page.html";
  expect_refused(options, "is not a folder");
  options.root = root_;  // a folder without samples
  expect_refused(options, "no sample folders");
  add_sample("job/seed_000000", {"a dog", "a cat"}, 0);
  options.out = root_ / "no" / "such" / "page.html";
  expect_refused(options, "does not exist");
  options.out = root_ / "job";
  expect_refused(options, "is a folder");
  options.out.clear();
  options.scores = root_ / "missing.json";
  expect_refused(options, "scores file");
  EXPECT_FALSE(fs::exists(root_ / "index.html"));
  options.scores.clear();
  options.max_cards = 0;
  expect_refused(options, "at most 0");
}

TEST_F(GalleryFolder, ReportsUnreadableSamples) {
  add_sample("job/seed_000000", {"a dog", "a cat"}, 0);
  fs::create_directories(root_ / "job" / "seed_000001");
  std::ofstream(root_ / "job" / "seed_000001" / "metadata.json") << "{\"request\": 3}";
  GalleryOptions options;
  options.root = root_;
  const GalleryResult made = make_gallery(options);
  EXPECT_EQ(made.cards, 1u);
  ASSERT_EQ(made.unreadable.size(), 1u);
  EXPECT_NE(made.unreadable[0].find("seed_000001"), std::string::npos) << made.unreadable[0];
}

}  // namespace
}  // namespace anagram

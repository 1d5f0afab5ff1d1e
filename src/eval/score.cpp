#include "anagram/eval/score.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <tuple>

#include "anagram/core/error.h"
#include "anagram/io/image_io.h"
#include "anagram/io/view_picture.h"
#include "anagram/pipeline/sample_record.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void sample_error(const fs::path& folder, const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, "sample '" + printable(folder.string()) + "': " + what);
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6f", v);
  return buffer;
}

Estimate estimate(const std::vector<double>& values,
                  const std::function<double(const std::vector<double>&)>& statistic, int resamples,
                  uint64_t seed) {
  return {statistic(values), bootstrap_interval(values, statistic, resamples, seed)};
}

nlohmann::json estimate_json(const Estimate& e) {
  return {{"value", e.value}, {"ci95", {e.interval.low, e.interval.high}}};
}

}  // namespace

std::string method_label(const GenerateRequest& request) {
  if (request.method == Method::kBaseline) return "baseline";
  std::string label = "mtl";
  if (!request.antiseg) label += "-no-antiseg";
  if (!request.mtl.balance) label += "-no-balance";
  if (!request.mtl.rectify) label += "-no-rectify";
  return label;
}

std::vector<fs::path> find_sample_folders(const std::vector<fs::path>& roots, int max_depth) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const fs::path& root : roots) {
    if (!fs::is_directory(root, ec)) {
      throw Error(ErrorKind::kInvalidArgument,
                  "'" + printable(root.string()) + "' is not a folder");
    }
    if (fs::is_regular_file(root / "metadata.json", ec)) {
      found.push_back(root);
      continue;
    }
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::directory_entry& entry = *it;
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory(ec) || entry.is_symlink(ec) || name.empty() || name[0] == '.') {
        if (entry.is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (fs::is_regular_file(entry.path() / "metadata.json", ec)) {
        found.push_back(entry.path());
        it.disable_recursion_pending();
      } else if (it.depth() + 1 >= max_depth) {
        it.disable_recursion_pending();
      }
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

ScoredSample score_sample_folder(const ClipScorer& scorer, const fs::path& folder, int size) {
  const SampleRecord record = read_sample_record(folder, size);
  ScoredSample sample;
  sample.folder = folder;
  sample.group = method_label(record.request);
  sample.seed = record.seed;
  sample.picture_size = record.picture_size;
  for (const Task& task : record.tasks) {
    sample.prompts.push_back(task.prompt);
    sample.views.push_back(task.view->spec());
  }
  const RgbImage image = read_png(record.picture);
  if (image.width != sample.picture_size || image.height != sample.picture_size) {
    sample_error(folder, "'" + record.picture.filename().string() + "' is " +
                             std::to_string(image.width) + "x" + std::to_string(image.height) +
                             ", metadata.json says " + std::to_string(sample.picture_size));
  }
  std::vector<torch::Tensor> seen;
  for (const Task& task : record.tasks) {
    RgbImage viewed = view_of(*task.view, image);
    seen.push_back(
        torch::from_blob(viewed.pixels.data(), {viewed.height, viewed.width, 3}, torch::kByte)
            .clone());
  }
  // One host copy of the small (N, N) matrix, not N * N item() calls.
  const torch::Tensor s =
      scorer.similarity(torch::stack(seen), sample.prompts).to(torch::kDouble).contiguous();
  const int64_t n = s.size(0);
  const double* values = s.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i)
    sample.similarity.emplace_back(values + i * n, values + (i + 1) * n);
  sample.score = score_similarity(sample.similarity, scorer.manifest().logit_scale);
  return sample;
}

std::vector<GroupSummary> summarize_scores(const std::vector<ScoredSample>& samples, int resamples,
                                           uint64_t seed) {
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> groups;
  for (const auto& s : samples) {
    groups[s.group].first.push_back(s.score.alignment);
    groups[s.group].second.push_back(s.score.concealment);
  }
  const auto q90 = [](const std::vector<double>& v) { return quantile(v, 0.9); };
  const auto q95 = [](const std::vector<double>& v) { return quantile(v, 0.95); };
  std::vector<GroupSummary> out;
  for (const auto& [group, values] : groups) {
    const auto& [a, c] = values;
    GroupSummary g;
    g.group = group;
    g.samples = a.size();
    g.alignment_mean = estimate(a, mean_of, resamples, seed);
    g.alignment_q90 = estimate(a, q90, resamples, seed);
    g.alignment_q95 = estimate(a, q95, resamples, seed);
    g.concealment_mean = estimate(c, mean_of, resamples, seed);
    g.concealment_q90 = estimate(c, q90, resamples, seed);
    g.concealment_q95 = estimate(c, q95, resamples, seed);
    out.push_back(g);
  }
  return out;
}

void select_best(std::vector<ScoredSample>& samples, size_t k) {
  std::map<std::tuple<std::string, std::vector<std::string>, std::vector<std::string>>,
           std::vector<ScoredSample*>>
      sets;
  for (auto& s : samples) sets[{s.group, s.prompts, s.views}].push_back(&s);
  for (auto& [key, members] : sets) {
    std::stable_sort(members.begin(), members.end(),
                     [](const ScoredSample* a, const ScoredSample* b) {
                       if (a->score.alignment != b->score.alignment)
                         return a->score.alignment > b->score.alignment;
                       return a->score.concealment > b->score.concealment;
                     });
    for (size_t i = 0; i < members.size(); ++i) members[i]->selected = i < k;
  }
}

std::string samples_csv(const std::vector<ScoredSample>& samples) {
  std::ostringstream out;
  out << "folder,group,seed,size,prompts,views,alignment,concealment,concealment_views,selected,"
         "similarity\n";
  for (const auto& s : samples) {
    std::vector<std::string> entries;
    for (const auto& row : s.similarity) {
      for (const double v : row) entries.push_back(number(v));
    }
    out << csv_field(s.folder.string()) << ',' << csv_field(s.group) << ',' << s.seed << ','
        << s.picture_size << ',' << csv_field(join(s.prompts, " | ")) << ','
        << csv_field(join(s.views, " | ")) << ',' << number(s.score.alignment) << ','
        << number(s.score.concealment) << ',' << number(s.score.concealment_views) << ','
        << (s.selected ? "1" : "0") << ',' << csv_field(join(entries, " ")) << '\n';
  }
  return out.str();
}

std::string summary_csv(const std::vector<GroupSummary>& summary) {
  std::ostringstream out;
  out << "group,samples";
  for (const char* name : {"A_mean", "A_0.9", "A_0.95", "C_mean", "C_0.9", "C_0.95"}) {
    out << ',' << name << ',' << name << "_ci_low," << name << "_ci_high";
  }
  out << '\n';
  for (const auto& g : summary) {
    out << csv_field(g.group) << ',' << g.samples;
    for (const Estimate* e : {&g.alignment_mean, &g.alignment_q90, &g.alignment_q95,
                              &g.concealment_mean, &g.concealment_q90, &g.concealment_q95}) {
      out << ',' << number(e->value) << ',' << number(e->interval.low) << ','
          << number(e->interval.high);
    }
    out << '\n';
  }
  return out.str();
}

nlohmann::json scores_json(const std::vector<ScoredSample>& samples,
                           const std::vector<GroupSummary>& summary, const ScorerManifest& scorer) {
  nlohmann::json j;
  j["scorer"] = {{"name", scorer.name},
                 {"source", scorer.source},
                 {"manifest_sha256", scorer.sha256},
                 {"logit_scale", scorer.logit_scale}};
  j["definitions"] = {
      {"alignment", "min_i S_ii"},
      {"concealment", "mean_i softmax over prompts j of (logit_scale * S_ij), at j = i"},
      {"concealment_views", "mean_j softmax over views i of (logit_scale * S_ij), at i = j"},
      {"intervals", "95% percentile bootstrap, 1000 resamples, splitmix64 seed 0"}};
  j["samples"] = nlohmann::json::array();
  for (const auto& s : samples) {
    j["samples"].push_back({{"folder", s.folder.string()},
                            {"group", s.group},
                            {"seed", s.seed},
                            {"size", s.picture_size},
                            {"prompts", s.prompts},
                            {"views", s.views},
                            {"similarity", s.similarity},
                            {"alignment", s.score.alignment},
                            {"concealment", s.score.concealment},
                            {"concealment_views", s.score.concealment_views},
                            {"selected", s.selected}});
  }
  j["summary"] = nlohmann::json::array();
  for (const auto& g : summary) {
    j["summary"].push_back({{"group", g.group},
                            {"samples", g.samples},
                            {"alignment_mean", estimate_json(g.alignment_mean)},
                            {"alignment_q90", estimate_json(g.alignment_q90)},
                            {"alignment_q95", estimate_json(g.alignment_q95)},
                            {"concealment_mean", estimate_json(g.concealment_mean)},
                            {"concealment_q90", estimate_json(g.concealment_q90)},
                            {"concealment_q95", estimate_json(g.concealment_q95)}});
  }
  return j;
}

std::string summary_table(const std::vector<GroupSummary>& summary) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-28s %7s  %-22s %-22s %-22s %-22s\n", "method", "samples",
                "A (95% CI)", "A_0.9", "C (95% CI)", "C_0.9");
  out << line;
  const auto cell = [](const Estimate& e) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.4f [%.4f, %.4f]", e.value, e.interval.low,
                  e.interval.high);
    return std::string(buffer);
  };
  for (const auto& g : summary) {
    std::snprintf(line, sizeof line, "%-28s %7zu  %-22s %-22s %-22s %-22s\n", g.group.c_str(),
                  g.samples, cell(g.alignment_mean).c_str(), cell(g.alignment_q90).c_str(),
                  cell(g.concealment_mean).c_str(), cell(g.concealment_q90).c_str());
    out << line;
  }
  return out.str();
}

}  // namespace anagram

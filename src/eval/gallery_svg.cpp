// The gallery's summary plot: per method, the mean and 0.9 quantile of alignment and of
// concealment with their 95% bootstrap intervals, drawn by the program as inline SVG.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "anagram/eval/gallery.h"

namespace anagram {
namespace {

// Layout, in SVG user units (pixels at 100%).
constexpr double kLabelWidth = 190;  // method names, right-aligned
constexpr double kPanelWidth = 250;
constexpr double kPanelGap = 56;  // room for both panels' outer tick labels
constexpr double kRightMargin = 24;
constexpr double kTop = 40;  // panel titles above the rows
constexpr double kRowHeight = 28;
constexpr double kAxisHeight = 34;  // tick labels below the rows
constexpr const char* kMeanColour = "#1f6feb";
constexpr const char* kQuantileColour = "#c2410c";

std::string num(double value, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

struct Panel {
  const char* title;
  const char* symbol;  // "A" or "C" in the marks' titles
  Estimate GroupSummary::*mean;
  Estimate GroupSummary::*q90;
};

constexpr Panel kPanels[] = {
    {"Alignment A (min_i S_ii)", "A", &GroupSummary::alignment_mean, &GroupSummary::alignment_q90},
    {"Concealment C", "C", &GroupSummary::concealment_mean, &GroupSummary::concealment_q90}};

AxisScale panel_scale(const std::vector<GroupSummary>& summary, const Panel& panel) {
  double low = std::numeric_limits<double>::infinity();
  double high = -low;
  for (const auto& g : summary) {
    for (const Estimate* e : {&(g.*panel.mean), &(g.*panel.q90)}) {
      for (const double v : {e->value, e->interval.low, e->interval.high}) {
        if (!std::isfinite(v)) continue;
        low = std::min(low, v);
        high = std::max(high, v);
      }
    }
  }
  if (!std::isfinite(low)) return {};
  return axis_scale(low, high);
}

// One estimate: its interval as a bar and the value as a dot (mean) or a square (quantile).
void write_mark(std::ostringstream& out, const Estimate& e, const AxisScale& scale, double left,
                double y, bool square, const std::string& tooltip) {
  if (!std::isfinite(e.value)) return;
  const auto x = [&](double v) { return num(scale.position(v, left, kPanelWidth)); };
  const char* colour = square ? kQuantileColour : kMeanColour;
  out << "<g><title>" << tooltip << "</title>";
  if (std::isfinite(e.interval.low) && std::isfinite(e.interval.high)) {
    out << "<line x1=\"" << x(e.interval.low) << "\" y1=\"" << num(y) << "\" x2=\""
        << x(e.interval.high) << "\" y2=\"" << num(y) << "\" stroke=\"" << colour
        << "\" stroke-width=\"2\" stroke-linecap=\"round\"/>";
  }
  const double cx = scale.position(e.value, left, kPanelWidth);
  if (square) {
    out << "<rect x=\"" << num(cx - 4) << "\" y=\"" << num(y - 4)
        << "\" width=\"8\" height=\"8\" fill=\"#fff\" stroke=\"" << colour
        << "\" stroke-width=\"2\"/>";
  } else {
    out << "<circle cx=\"" << num(cx) << "\" cy=\"" << num(y) << "\" r=\"4.5\" fill=\"" << colour
        << "\"/>";
  }
  out << "</g>";
}

std::string tooltip(const std::string& group, const char* statistic, const char* symbol,
                    const Estimate& e) {
  return html_escape(group) + ": " + statistic + " " + symbol + " " + num(e.value, 4) + " [" +
         num(e.interval.low, 4) + ", " + num(e.interval.high, 4) + "]";
}

void write_panel(std::ostringstream& out, const std::vector<GroupSummary>& summary,
                 const Panel& panel, double left) {
  const AxisScale scale = panel_scale(summary, panel);
  const double bottom = kTop + kRowHeight * static_cast<double>(summary.size());
  out << "<text x=\"" << num(left) << "\" y=\"20\" font-size=\"13\" font-weight=\"600\">"
      << panel.title << "</text>";
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(scale.step) + 1e-9)));
  const int ticks = static_cast<int>(std::lround((scale.high - scale.low) / scale.step));
  for (int t = 0; t <= ticks && t <= 50; ++t) {
    const double value = scale.low + t * scale.step;
    const std::string x = num(scale.position(value, left, kPanelWidth));
    out << "<line x1=\"" << x << "\" y1=\"" << num(kTop - 6) << "\" x2=\"" << x << "\" y2=\""
        << num(bottom) << "\" stroke=\"#d8dde5\"/><text x=\"" << x << "\" y=\"" << num(bottom + 16)
        << "\" font-size=\"11\" fill=\"#5f6b7a\" text-anchor=\"middle\">" << num(value, decimals)
        << "</text>";
  }
  for (size_t r = 0; r < summary.size(); ++r) {
    const GroupSummary& g = summary[r];
    const double y = kTop + kRowHeight * (static_cast<double>(r) + 0.5);
    write_mark(out, g.*panel.mean, scale, left, y - 5, false,
               tooltip(g.group, "mean", panel.symbol, g.*panel.mean));
    write_mark(out, g.*panel.q90, scale, left, y + 5, true,
               tooltip(g.group, "0.9 quantile", panel.symbol, g.*panel.q90));
  }
}

}  // namespace

double AxisScale::position(double value, double left, double width) const {
  return left + (value - low) / (high - low) * width;
}

AxisScale axis_scale(double low, double high) {
  // Scores differ in the second or third decimal at best: a narrower axis shows only noise.
  constexpr double kMinSpan = 0.01;
  if (!(high - low >= kMinSpan)) {
    const double middle = (low + high) / 2;
    low = middle - kMinSpan / 2;
    high = middle + kMinSpan / 2;
  }
  const double raw = (high - low) / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (const double factor : {1.0, 2.0, 5.0}) {
    if (factor * magnitude >= raw * (1 - 1e-9)) {
      step = factor * magnitude;
      break;
    }
  }
  AxisScale s;
  s.step = step;
  s.low = std::floor(low / step + 1e-9) * step;
  s.high = std::ceil(high / step - 1e-9) * step;
  if (s.high <= s.low) s.high = s.low + step;
  return s;
}

std::string summary_svg(const std::vector<GroupSummary>& summary) {
  if (summary.empty()) return "";
  const double width = kLabelWidth + 2 * kPanelWidth + kPanelGap + kRightMargin;
  const double height = kTop + kRowHeight * static_cast<double>(summary.size()) + kAxisHeight;
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width, 0) << "\" height=\""
      << num(height, 0) << "\" viewBox=\"0 0 " << num(width, 0) << " " << num(height, 0)
      << "\" role=\"img\" aria-label=\"alignment and concealment per method\" "
      << "font-family=\"system-ui, DejaVu Sans, sans-serif\" fill=\"#1d2330\">";
  for (size_t r = 0; r < summary.size(); ++r) {
    const double y = kTop + kRowHeight * static_cast<double>(r);
    if (r % 2 == 1) {
      out << "<rect x=\"0\" y=\"" << num(y) << "\" width=\"" << num(width, 0) << "\" height=\""
          << num(kRowHeight) << "\" fill=\"#f6f8fa\"/>";
    }
    std::string label = summary[r].group;
    if (label.size() > 40) label = label.substr(0, 37) + "...";  // html_escape mends a cut
    out << "<text x=\"" << num(kLabelWidth - 14) << "\" y=\"" << num(y + kRowHeight / 2 + 4)
        << "\" font-size=\"12\" text-anchor=\"end\">" << html_escape(label) << " ("
        << summary[r].samples << ")</text>";
  }
  for (size_t p = 0; p < 2; ++p) {
    const double left = kLabelWidth + static_cast<double>(p) * (kPanelWidth + kPanelGap);
    write_panel(out, summary, kPanels[p], left);
  }
  out << "</svg>";
  return out.str();
}

}  // namespace anagram

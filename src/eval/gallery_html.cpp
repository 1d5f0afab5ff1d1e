// The gallery page: escaping, relative picture URLs, the cards and their groups, the page around
// them. The summary plot is in gallery_svg.cpp; the page's CSS and script in gallery_assets.inc.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "anagram/eval/gallery.h"
#include "core/sha256.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

#include "eval/gallery_assets.inc"

// Length of the valid UTF-8 sequence at text[i], or 0 (stray, truncated, overlong, surrogate,
// above U+10FFFF).
size_t utf8_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (n == 0 || c > 0xf4 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  const unsigned char d = byte(i + 1);
  if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0) || (c == 0xf0 && d < 0x90) ||
      (c == 0xf4 && d >= 0x90)) {
    return 0;
  }
  return n;
}

fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path out = fs::weakly_canonical(path, ec);
  return ec ? path.lexically_normal() : out;
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k)
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? digits[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

// "'sha256-<base64>'" of `text`, for the Content-Security-Policy.
std::string csp_hash(const std::string& text) {
  const std::string hex = detail::sha256_hex(text);
  std::string digest;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    digest.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return "'sha256-" + base64(digest) + "'";
}

bool is_mp4(const std::string& file) {
  if (file.size() < 4) return false;
  std::string tail = file.substr(file.size() - 4);
  for (char& c : tail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return tail == ".mp4";
}

// The URL of `file` inside the sample folder whose URL path (from the page) is `base`.
std::string file_url(const std::string& base, const std::string& file) {
  const std::string name = url_path(fs::path(file));
  return base.empty() ? name : base + "/" + name;
}

void write_scores(std::ostringstream& out, const GalleryCard& card) {
  out << "<div class=\"scores\">";
  if (card.score) {
    out << "<span title=\"alignment A = min_i S_ii\">A <b>" << fixed(card.score->alignment, 4)
        << "</b></span><span title=\"concealment C = mean_i softmax_j(t S_ij)_ii\">C <b>"
        << fixed(card.score->concealment, 4) << "</b></span>";
    if (card.score->selected) out << "<span class=\"best\">selected</span>";
  } else {
    out << "<span class=\"none\">not scored</span>";
  }
  out << "</div>";
}

void write_pictures(std::ostringstream& out, const GalleryCard& card, const std::string& base,
                    const std::string& alt) {
  const std::string sheet = file_url(base, card.sheets.front().second);
  out << "<a class=\"pic\" href=\"" << sheet << "\"><img src=\"" << sheet << "\" alt=\"" << alt
      << "\" loading=\"lazy\" decoding=\"async\"></a>";
  // One animation is shown (a WebP if there is one, it needs no player); all are linked below.
  const std::string* shown = nullptr;
  for (const std::string& file : card.animations) {
    if (shown == nullptr || (is_mp4(*shown) && !is_mp4(file))) shown = &file;
  }
  if (shown == nullptr) return;
  const std::string url = file_url(base, *shown);
  if (is_mp4(*shown)) {
    out << "<video class=\"anim\" src=\"" << url
        << "\" controls loop muted playsinline preload=\"metadata\"></video>";
  } else {
    out << "<img class=\"anim\" src=\"" << url << "\" alt=\"animation of " << alt
        << "\" loading=\"lazy\">";
  }
}

void write_links(std::ostringstream& out, const GalleryCard& card, const std::string& base,
                 const std::string& key) {
  out << "<div class=\"links\"><a href=\"" << file_url(base, "metadata.json")
      << "\" title=\"metadata.json\">" << html_escape(key.empty() ? "." : key) << "</a>";
  for (size_t i = 1; i < card.sheets.size(); ++i) {
    out << "<a href=\"" << file_url(base, card.sheets[i].second) << "\">" << card.sheets[i].first
        << " px sheet</a>";
  }
  for (const std::string& file : card.animations) {
    out << "<a href=\"" << file_url(base, file) << "\">" << html_escape(file) << "</a>";
  }
  out << "</div>";
}

void write_card(std::ostringstream& out, const GalleryCard& card, size_t order, size_t pair,
                const fs::path& page_folder) {
  const fs::path relative = resolved(card.folder).lexically_relative(resolved(page_folder));
  const std::string base = url_path(relative.empty() ? resolved(card.folder) : relative);
  const std::string key = relative.empty() ? card.folder.generic_string()
                                           : relative.lexically_normal().generic_string();
  out << "<article class=\"card\" data-key=\"" << base << "\" data-order=\"" << order
      << "\" data-pair=\"" << pair << "\" data-seed=\"" << card.seed << "\"";
  if (card.score) {
    out << " data-alignment=\"" << fixed(card.score->alignment, 6) << "\" data-concealment=\""
        << fixed(card.score->concealment, 6) << "\" data-selected=\""
        << (card.score->selected ? 1 : 0) << "\"";
  }
  out << ">";
  write_pictures(out, card, base, html_escape(join(card.prompts, " / ")));
  out << "<div class=\"body\"><ol class=\"prompts\">";
  for (size_t i = 0; i < card.prompts.size(); ++i) {
    out << "<li><span class=\"view\">" << html_escape(i < card.views.size() ? card.views[i] : "")
        << "</span>" << html_escape(card.prompts[i]) << "</li>";
  }
  out << "</ol><div class=\"facts\"><span class=\"method\">" << html_escape(card.method)
      << "</span><span>seed " << card.seed << "</span><span>" << card.picture_size
      << " px</span></div>";
  write_scores(out, card);
  write_links(out, card, base, key);
  out << "</div></article>\n";
}

void write_head(std::ostringstream& out, const std::string& title) {
  const std::string policy = "default-src 'none'; script-src " + csp_hash(kGalleryScript) +
                             "; style-src " + csp_hash(kGalleryCss) +
                             "; img-src 'self' file:; media-src 'self' file:; base-uri 'none'; "
                             "form-action 'none'";
  out << "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta http-equiv=\"Content-Security-Policy\" content=\"" << policy << "\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<meta name=\"generator\" content=\"anagram " << ANAGRAM_VERSION << " gallery\">\n"
      << "<title>" << html_escape(title) << "</title>\n"
      << "<style>" << kGalleryCss << "</style>\n"
      << "<script>" << kGalleryScript << "</script>\n</head>\n";
}

void write_header(std::ostringstream& out, const std::vector<GalleryCard>& cards, size_t groups,
                  const GalleryPage& page) {
  size_t scored = 0, selected = 0;
  for (const auto& c : cards) {
    scored += c.score.has_value();
    selected += c.score && c.score->selected;
  }
  out << "<header><h1>" << html_escape(page.title) << "</h1><p class=\"stats\">" << cards.size()
      << (cards.size() == 1 ? " sample" : " samples") << " in " << groups
      << (groups == 1 ? " group" : " groups");
  if (page.scores) {
    out << " &middot; scored by " << html_escape(page.scores->scorer) << " (" << scored << " of "
        << cards.size() << ")";
  }
  out << "</p></header>\n";
  if (page.scores && !page.scores->summary.empty()) {
    out << "<figure class=\"summary\">" << summary_svg(page.scores->summary)
        << "<figcaption>Per method: &#9679; mean, &#9633; 0.9 quantile, each with its 95% "
           "bootstrap interval (as <code>anagram score</code> prints them; A = alignment, C = "
           "concealment).</figcaption></figure>\n";
  }
  const char* off = scored == 0 ? " disabled" : "";
  out << "<nav class=\"controls\"><span class=\"label\">Sort</span>"
      << "<button type=\"button\" data-sort=\"order\" aria-pressed=\"true\">folder"
      << "<span class=\"dir\"></span></button><button type=\"button\" data-sort=\"alignment\" "
      << "aria-pressed=\"false\"" << off << ">alignment<span class=\"dir\"></span></button>"
      << "<button type=\"button\" data-sort=\"concealment\" aria-pressed=\"false\"" << off
      << ">concealment<span class=\"dir\"></span></button><button type=\"button\" "
      << "data-sort=\"seed\" aria-pressed=\"false\">seed<span class=\"dir\"></span></button>"
      << "<span class=\"label\">Group</span><button type=\"button\" data-group=\"pair\" "
      << "aria-pressed=\"true\">prompts &amp; method</button><button type=\"button\" "
      << "data-group=\"method\" aria-pressed=\"false\">method</button><button type=\"button\" "
      << "data-group=\"none\" aria-pressed=\"false\">none</button>";
  if (selected > 0) {
    out << "<label class=\"label\"><input type=\"checkbox\" id=\"only-selected\"> only the "
        << selected << " selected (score --select)</label>";
  }
  out << "</nav>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (n == 0 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
      out += "\xef\xbf\xbd";  // U+FFFD
      i += n == 0 ? 1 : n;
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string url_path(const fs::path& relative) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const fs::path& part : relative) {
    const std::string s = part.string();
    if (s == "/") {
      out = "/";
      continue;
    }
    if (s.empty() || s == ".") continue;
    if (!out.empty() && out.back() != '/') out += '/';
    for (const unsigned char c : s) {
      const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
      if (plain) {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
  }
  return out;
}

std::string render_gallery(const std::vector<GalleryCard>& cards, const GalleryPage& page) {
  const std::vector<CardGroup> groups = group_cards(cards);
  std::ostringstream out;
  write_head(out, page.title);
  out << "<body>\n";
  write_header(out, cards, groups.size(), page);
  out << "<main id=\"groups\">\n";
  size_t order = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const CardGroup& group = groups[g];
    out << "<section class=\"group\" data-pair=\"" << g << "\"><h2><span class=\"pair\">"
        << html_escape(join(group.prompts, " / ")) << "</span><span class=\"views\">"
        << html_escape(join(group.views, ", ")) << "</span><span class=\"method\">"
        << html_escape(group.method) << "</span><span class=\"count\">" << group.cards.size()
        << (group.cards.size() == 1 ? " sample" : " samples") << "</span></h2>\n"
        << "<div class=\"cards\">\n";
    for (const size_t i : group.cards) write_card(out, cards[i], order++, g, page.page_folder);
    out << "</div></section>\n";
  }
  out << "</main>\n<pre id=\"selftest\" hidden></pre>\n<footer>Made by <code>anagram "
         "gallery</code> "
      << ANAGRAM_VERSION << ". Pictures are linked relative to this page; it needs no network. "
      << "Alignment A = min<sub>i</sub> S<sub>ii</sub>, concealment C = mean<sub>i</sub> "
      << "softmax<sub>j</sub>(t S<sub>ij</sub>)<sub>ii</sub> (docs/scorer.md).</footer>\n"
      << "</body>\n</html>\n";
  return out.str();
}

}  // namespace anagram

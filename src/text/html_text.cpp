#include "text/html_text.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <string>

namespace hsa::data {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_block(std::string_view name) {
  return is_one_of(name, {"address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "div", "dl",
                          "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
                          "html", "li", "main", "ol", "p", "section", "td", "th", "title", "tr", "ul"});
}

bool is_skipped(std::string_view name) {
  return is_one_of(name, {"head", "script", "style", "pre", "table", "nav", "svg", "form", "noscript", "textarea",
                          "select", "button", "template", "iframe", "object"});
}

// Raw-text elements: their contents are not markup, so only the matching end tag ends them.
bool is_raw_text(std::string_view name) { return name == "script" || name == "style"; }

// First case-insensitive occurrence of `needle` (lower case) in s at or after `from`, or npos.
size_t find_ci(std::string_view s, std::string_view needle, size_t from) {
  for (size_t i = from; i + needle.size() <= s.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && lower(s[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return;  // not a character: dropped
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct NamedEntity {
  std::string_view name;
  uint32_t code_point;
};
constexpr std::array<NamedEntity, 24> kEntities{{
    {"amp", '&'},     {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},   {"nbsp", 0xA0},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB},   {"raquo", 0xBB},   {"copy", 0xA9},    {"reg", 0xAE},    {"trade", 0x2122},
    {"middot", 0xB7}, {"bull", 0x2022},  {"times", 0xD7},   {"para", 0xB6},    {"sect", 0xA7},   {"deg", 0xB0},
}};

// Decodes the entity at html[at] == '&' into out; returns the index after it (or after the '&' when it is
// not an entity, which is then kept as a literal '&').
size_t decode_entity(std::string_view html, size_t at, std::string& out) {
  const size_t semi = html.find(';', at);
  if (semi == std::string_view::npos || semi - at > 12) {
    out += '&';
    return at + 1;
  }
  std::string_view body = html.substr(at + 1, semi - at - 1);
  if (!body.empty() && body[0] == '#') {
    const bool hex = body.size() > 1 && lower(body[1]) == 'x';
    std::string_view digits = body.substr(hex ? 2 : 1);
    uint32_t cp = 0;
    bool ok = !digits.empty();
    for (char c : digits) {
      const char l = lower(c);
      int v = l >= '0' && l <= '9' ? l - '0' : (hex && l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1);
      if (v < 0 || cp > 0x10FFFF) {
        ok = false;
        break;
      }
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
    }
    if (ok) {
      append_utf8(out, cp);
      return semi + 1;
    }
  } else {
    for (const NamedEntity& e : kEntities) {
      if (body == e.name) {
        append_utf8(out, e.code_point);
        return semi + 1;
      }
    }
  }
  out += '&';
  return at + 1;
}

// End of the tag starting at html[at] == '<': the index of its closing '>' (quotes respected), or npos.
size_t tag_end(std::string_view html, size_t at) {
  char quote = 0;
  for (size_t i = at + 1; i < html.size(); ++i) {
    const char c = html[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

// Index after the end tag of the raw-text element `name` whose contents start at `from`, or npos.
size_t skip_raw_text(std::string_view html, const std::string& name, size_t from) {
  const size_t close = find_ci(html, "</" + name, from);
  if (close == std::string_view::npos) return close;
  const size_t end = tag_end(html, close);
  return end == std::string_view::npos ? end : end + 1;
}

struct Tag {
  std::string name;  // lower case; empty for comments, doctype, processing instructions
  bool closing = false;
  bool self_closing = false;
  bool navigation = false;  // role="navigation" or role="search"
};

Tag parse_tag(std::string_view inner) {  // inner: the text between '<' and '>'
  Tag tag;
  size_t i = 0;
  if (i < inner.size() && inner[i] == '/') {
    tag.closing = true;
    ++i;
  }
  const size_t start = i;
  while (i < inner.size() && (std::isalnum(static_cast<unsigned char>(inner[i])))) ++i;
  tag.name = lowered(inner.substr(start, i - start));
  tag.self_closing = !inner.empty() && inner.back() == '/';
  const std::string attrs = lowered(inner.substr(i));
  tag.navigation = attrs.find("role=\"navigation\"") != std::string::npos ||
                   attrs.find("role=\"search\"") != std::string::npos;
  return tag;
}

// Collapses whitespace runs in the raw text into single spaces and breaks lines at block boundaries.
class LineWriter {
 public:
  void text(std::string_view s) {
    for (char c : s) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        space_ = !line_.empty();
      } else {
        if (space_) line_ += ' ';
        space_ = false;
        line_ += c;
      }
    }
  }
  void decoded(std::string_view s) {  // entity text: a no-break space is a space for collapsing too
    if (s == "\xC2\xA0") return text(" ");
    text(s);
  }
  void break_line() {
    if (!line_.empty()) out_ += line_ + '\n';
    line_.clear();
    space_ = false;
  }
  std::string finish() {
    break_line();
    return std::move(out_);
  }

 private:
  std::string out_, line_;
  bool space_ = false;
};

}  // namespace

std::string html_to_text(std::string_view html) {
  LineWriter writer;
  size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '&') {
      std::string entity;
      i = decode_entity(html, i, entity);
      writer.decoded(entity);
      continue;
    }
    if (c != '<') {
      const size_t next = html.find_first_of("<&", i);
      writer.text(html.substr(i, next == std::string_view::npos ? std::string_view::npos : next - i));
      i = next == std::string_view::npos ? html.size() : next;
      continue;
    }
    if (html.substr(i, 4) == "<!--") {
      const size_t end = html.find("-->", i + 4);
      if (end == std::string_view::npos) break;
      i = end + 3;
      continue;
    }
    const size_t end = tag_end(html, i);
    if (end == std::string_view::npos) break;
    const Tag tag = parse_tag(html.substr(i + 1, end - i - 1));
    i = end + 1;
    if (tag.name.empty() || tag.closing || tag.self_closing) {
      if (is_block(tag.name)) writer.break_line();
      continue;
    }
    if (is_raw_text(tag.name)) {
      i = skip_raw_text(html, tag.name, i);
      if (i == std::string_view::npos) break;
      continue;
    }
    if (is_skipped(tag.name) || tag.navigation) {
      // Skip to the matching end tag, counting nested elements of the same name.
      int depth = 1;
      while (depth > 0) {
        const size_t open = html.find('<', i);
        if (open == std::string_view::npos) return writer.finish();
        const size_t close = tag_end(html, open);
        if (close == std::string_view::npos) return writer.finish();
        const Tag inner = parse_tag(html.substr(open + 1, close - open - 1));
        i = close + 1;
        if (inner.name == tag.name && !inner.self_closing) depth += inner.closing ? -1 : 1;
        if (depth > 0 && !inner.closing && !inner.self_closing && is_raw_text(inner.name)) {
          i = skip_raw_text(html, inner.name, i);
          if (i == std::string_view::npos) return writer.finish();
        }
      }
      writer.break_line();
      continue;
    }
    if (is_block(tag.name)) writer.break_line();
  }
  return writer.finish();
}

}  // namespace hsa::data

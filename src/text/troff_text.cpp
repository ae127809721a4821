#include "text/troff_text.h"

#include <array>
#include <utility>
#include <vector>

namespace hsa::data {
namespace {

// Two-character special characters that read as text; every other one is left out.
constexpr std::array<std::pair<std::string_view, std::string_view>, 18> kSpecials = {{
    {"em", "-"}, {"en", "-"}, {"hy", "-"}, {"mi", "-"}, {"lq", "\""}, {"rq", "\""}, {"dq", "\""},
    {"aq", "'"}, {"oq", "'"}, {"cq", "'"}, {"bu", "*"}, {"co", "(c)"}, {"rg", "(R)"}, {"ti", "~"},
    {"ha", "^"}, {"ga", "`"}, {"tm", "(TM)"}, {"pl", "+"},
}};

std::string_view special(std::string_view name) {
  for (const auto& [n, text] : kSpecials)
    if (n == name) return text;
  return "";
}

// Skips a delimited argument such as 'xyz' after \w, \h, \v, \o; `i` is at the delimiter.
size_t skip_delimited(std::string_view s, size_t i) {
  if (i >= s.size()) return i;
  const char delim = s[i];
  const size_t end = s.find(delim, i + 1);
  return end == std::string_view::npos ? s.size() : end + 1;
}

// A name after \f, \*, \n, \( style escapes: "(xx", "[long]" or one character; returns it and moves `i`.
std::string_view escape_name(std::string_view s, size_t& i) {
  if (i >= s.size()) return {};
  if (s[i] == '(') {
    std::string_view name = s.substr(i + 1, 2);
    i = std::min(s.size(), i + 3);
    return name;
  }
  if (s[i] == '[') {
    const size_t end = s.find(']', i);
    std::string_view name = end == std::string_view::npos ? s.substr(i + 1) : s.substr(i + 1, end - i - 1);
    i = end == std::string_view::npos ? s.size() : end + 1;
    return name;
  }
  return s.substr(i++, 1);
}

// Text of one line with its escapes resolved as described in the header.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) break;  // a trailing backslash continues the line: the caller joins with a space
    const char e = s[i + 1];
    i += 2;
    switch (e) {
      case '"': return out;  // comment to the end of the line
      case '-': out += '-'; break;
      case 'e': case '\\': out += '\\'; break;
      case '~': case ' ': case '0': out += ' '; break;
      case '&': case '|': case '^': case 'c': case ':': case '%': case ')': case '/': case ',': break;
      case '(': case '[': {
        --i;
        out += special(escape_name(s, i));
        break;
      }
      case 'f': case '*': case 'n': case 'F': case 'm': case 'g': case 'k': case 'Y': escape_name(s, i); break;
      case 's': {  // \s+1, \s-1, \s0, \s(12, \s[12]
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (i < s.size() && (s[i] == '(' || s[i] == '[')) {
          escape_name(s, i);
        } else {
          while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        }
        break;
      }
      case 'w': case 'h': case 'v': case 'o': case 'l': case 'L': case 'D': case 'X': case 'b': case 'Z':
      case 'A': case 'N': case 'x': case 'R': case 'S': i = skip_delimited(s, i); break;
      default: out += e; break;  // \. \' and the like: the character itself
    }
  }
  return out;
}

// The arguments of a macro line, with double quotes grouping words ("" inside quotes is a quote).
std::vector<std::string> macro_args(std::string_view s) {
  std::vector<std::string> args;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    std::string arg;
    if (s[i] == '"') {
      ++i;
      while (i < s.size()) {
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            arg += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        arg += s[i++];
      }
    } else {
      while (i < s.size() && s[i] != ' ' && s[i] != '\t') arg += s[i++];
    }
    args.push_back(std::move(arg));
  }
  return args;
}

class ManText {
 public:
  void text(std::string_view line) {
    std::string t = unescape(line);
    if (t.find_first_not_of(" \t") == std::string::npos) return;
    if (!paragraph_.empty()) paragraph_ += ' ';
    paragraph_ += t;
  }
  void own_line(std::string_view line) {
    brk();
    text(line);
    brk();
  }
  void brk() {
    const size_t a = paragraph_.find_first_not_of(" \t"), b = paragraph_.find_last_not_of(" \t");
    if (a != std::string::npos) (out_ += paragraph_.substr(a, b - a + 1)) += '\n';
    paragraph_.clear();
  }
  std::string finish() {
    brk();
    return std::move(out_);
  }

 private:
  std::string out_, paragraph_;
};

std::string joined(const std::vector<std::string>& args, const char* sep) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) out += sep;
    out += args[i];
  }
  return out;
}

}  // namespace

std::string man_to_text(std::string_view troff) {
  ManText page;
  bool tag_next = false, heading_next = false;
  std::string_view skip_until;  // the request that ends a dropped block: ".fi", ".EE", ".TE" or ".."
  std::string pending;          // a text line continued by a trailing backslash
  size_t from = 0;
  while (from < troff.size()) {
    size_t end = troff.find('\n', from);
    if (end == std::string_view::npos) end = troff.size();
    std::string_view raw = troff.substr(from, end - from);
    from = end + 1;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    if (!raw.empty() && raw.back() == '\\' && (raw.size() < 2 || raw[raw.size() - 2] != '\\')) {
      pending.append(raw.substr(0, raw.size() - 1));
      continue;
    }
    std::string line_store = pending.empty() ? std::string(raw) : pending + std::string(raw);
    pending.clear();
    std::string_view line = line_store;

    const bool control = !line.empty() && (line[0] == '.' || line[0] == '\'');
    std::string_view name, rest;
    if (control) {
      size_t i = 1;
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      name = line.substr(i, j - i);
      rest = line.substr(j);
    }
    if (!skip_until.empty()) {
      if (control && (name == skip_until || (skip_until == ".." && name == "."))) skip_until = {};
      continue;
    }
    if (!control) {
      if (line.find_first_not_of(" \t") == std::string_view::npos) {
        page.brk();
      } else if (heading_next || tag_next) {
        page.own_line(line);
        heading_next = tag_next = false;
      } else {
        page.text(line);
      }
      continue;
    }
    if (name.empty() || name.substr(0, 2) == "\\\"") continue;  // "." alone or a comment
    if (name == "nf" || name == "EX") {
      page.brk();
      skip_until = name == "nf" ? "fi" : "EE";
      continue;
    }
    if (name == "TS") { page.brk(); skip_until = "TE"; continue; }
    if (name == "de" || name == "de1" || name == "am") { skip_until = ".."; continue; }
    const std::vector<std::string> args = macro_args(rest);
    if (name == "SH" || name == "SS") {
      page.brk();
      if (args.empty()) heading_next = true;
      else page.own_line(joined(args, " "));
    } else if (name == "TP") {
      page.brk();
      tag_next = true;
    } else if (name == "IP" || name == "HP") {
      page.brk();
      if (!args.empty() && name == "IP" && args[0] != "\\(bu" && args[0] != "*" && args[0] != "\\[bu]")
        page.own_line(args[0]);
    } else if (name == "PP" || name == "P" || name == "LP" || name == "sp" || name == "br" || name == "RS" ||
               name == "RE" || name == "in" || name == "ti" || name == "bp") {
      page.brk();
    } else if (name == "B" || name == "I" || name == "SM" || name == "SB") {
      std::string t = joined(args, " ");
      if (tag_next) { page.own_line(t); tag_next = false; }
      else page.text(t);
    } else if (name == "BR" || name == "RB" || name == "IR" || name == "RI" || name == "BI" || name == "IB") {
      std::string t = joined(args, "");
      if (tag_next) { page.own_line(t); tag_next = false; }
      else page.text(t);
    } else if (name == "UR" || name == "MT" || name == "UE" || name == "ME") {
      if ((name == "UE" || name == "ME") && !args.empty()) page.text(joined(args, " "));
    }
    // Every other request (.TH, .so, .if, .ie, .el, .ft, .ad, .na, .ne, .ds, .nr, .hy, .ll ...) is dropped.
  }
  return page.finish();
}

}  // namespace hsa::data

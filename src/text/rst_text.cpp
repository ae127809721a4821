#include "text/rst_text.h"

#include <array>
#include <cctype>
#include <vector>

namespace hsa::data {
namespace {

constexpr std::array<std::string_view, 9> kAdmonitions = {"note",    "warning", "important", "tip",       "hint",
                                                          "caution", "attention", "danger", "admonition"};

size_t indent_of(std::string_view line) {
  size_t n = 0;
  for (char c : line) {
    if (c == ' ') ++n;
    else if (c == '\t') n = (n / 8 + 1) * 8;
    else break;
  }
  return n;
}

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

std::string_view trimmed(std::string_view s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string_view::npos) return {};
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// A section adornment (one punctuation character repeated, 3 or more) or a table border ('=' or '-' runs
// separated by spaces, or a grid border starting with '+').
bool is_rule(std::string_view t) {
  if (t.size() < 3) return false;
  static constexpr std::string_view kAdorn = "=-~^\"'`#*+_:.<>";
  if (kAdorn.find(t[0]) != std::string_view::npos && t.find_first_not_of(t[0]) == std::string_view::npos)
    return true;
  if (t[0] == '+' && t.find_first_not_of("+-=") == std::string_view::npos) return true;
  return (t[0] == '=' || t[0] == '-') && t.find_first_not_of("=- ") == std::string_view::npos &&
         t.find(' ') != std::string_view::npos;
}

// Inline markup resolved as described in the header.
std::string inline_text(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.substr(i, 2) == "\\ ") { i += 2; continue; }
    if (s.substr(i, 2) == "``") {
      const size_t end = s.find("``", i + 2);
      if (end != std::string_view::npos) {
        out += s.substr(i + 2, end - i - 2);
        i = end + 2;
        continue;
      }
    }
    if (s[i] == ':' && i + 1 < s.size() && std::isalpha(static_cast<unsigned char>(s[i + 1]))) {
      // :role:`text <target>` -> text
      size_t j = i + 1;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':' ||
                              s[j] == '_'))
        ++j;
      if (j < s.size() && s[j] == '`' && s[j - 1] == ':') {
        i = j;  // the backquoted part follows
        continue;
      }
    }
    if (s[i] == '`') {
      const size_t end = s.find('`', i + 1);
      if (end != std::string_view::npos) {
        std::string_view inner = s.substr(i + 1, end - i - 1);
        const size_t lt = inner.rfind('<');
        if (lt != std::string_view::npos && inner.back() == '>') inner = trimmed(inner.substr(0, lt));
        if (!inner.empty() && inner[0] == '~') inner.remove_prefix(1);
        out += inner;
        i = end + 1;
        while (i < s.size() && s[i] == '_') ++i;
        continue;
      }
    }
    if (s.substr(i, 2) == "**") { i += 2; continue; }
    if (s[i] == '*' && i + 1 < s.size() && s[i + 1] != ' ' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '(')) {
      ++i;
      continue;
    }
    if (s[i] == '*' && i > 0 && s[i - 1] != ' ' && (i + 1 == s.size() || !std::isalnum(static_cast<unsigned char>(s[i + 1])))) {
      ++i;
      continue;
    }
    out += s[i++];
  }
  return out;
}

class Paragraphs {
 public:
  void add(std::string_view text) {
    if (!current_.empty()) current_ += ' ';
    current_ += text;
  }
  // Ends the paragraph: its text, inline markup resolved, becomes one output line.
  void end() {
    std::string t(trimmed(current_));
    current_.clear();
    if (t.empty()) return;
    (out_ += inline_text(t)) += '\n';
  }
  // Whether the paragraph being built ends in "::" (a literal block follows); strips the marker.
  bool take_literal_marker() {
    std::string_view t = trimmed(current_);
    if (t.size() < 2 || t.substr(t.size() - 2) != "::") return false;
    if (t == "::") current_.clear();
    else if (t[t.size() - 3] == ' ') current_ = std::string(t.substr(0, t.size() - 3));
    else current_ = std::string(t.substr(0, t.size() - 1));
    return true;
  }
  std::string finish() {
    end();
    return std::move(out_);
  }

 private:
  std::string out_, current_;
};

bool is_admonition(std::string_view directive) {
  for (std::string_view a : kAdmonitions)
    if (directive == a) return true;
  return false;
}

}  // namespace

std::string rst_to_text(std::string_view rst) {
  std::vector<std::string_view> lines;
  for (size_t from = 0; from < rst.size();) {
    size_t end = rst.find('\n', from);
    if (end == std::string_view::npos) end = rst.size();
    lines.push_back(rst.substr(from, end - from));
    from = end + 1;
  }
  Paragraphs text;
  size_t para_indent = 0;   // the column continuation lines of the paragraph start at
  size_t first_indent = 0;  // the indent of the paragraph's first line: a literal block is indented deeper
  bool in_para = false;
  // Drops the block indented deeper than `indent` that starts at line i (blank lines inside it included).
  auto skip_block = [&](size_t i, size_t indent) {
    while (i < lines.size() && (blank(lines[i]) || indent_of(lines[i]) > indent)) ++i;
    return i;
  };
  // Ends the paragraph being built; when it announced a literal block, returns the line after that block.
  auto end_paragraph = [&](size_t i) {
    if (!in_para) return i;
    in_para = false;
    const bool literal = text.take_literal_marker();
    text.end();
    return literal ? skip_block(i, first_indent) : i;
  };
  for (size_t i = 0; i < lines.size();) {
    std::string_view line = lines[i];
    if (blank(line)) {
      const size_t next = end_paragraph(i);
      i = next == i ? i + 1 : next;
      continue;
    }
    const size_t indent = indent_of(line);
    const std::string_view t = trimmed(line);
    if (is_rule(t) || t[0] == '|' || (t[0] == '+' && t.size() > 1 && (t[1] == '-' || t[1] == '='))) {
      end_paragraph(i);
      ++i;
      continue;
    }
    if (t.substr(0, 3) == ".. " || t == "..") {
      end_paragraph(i);
      const size_t colons = t.find("::");
      std::string_view directive = colons == std::string_view::npos ? "" : trimmed(t.substr(3, colons - 3));
      if (is_admonition(directive)) {
        std::string_view title = trimmed(t.substr(colons + 2));
        if (!title.empty()) text.add(title), text.end();
        ++i;
        // Options (":name: value") of the directive are skipped; its body is read as ordinary text.
        while (i < lines.size() && !blank(lines[i]) && trimmed(lines[i])[0] == ':') ++i;
        continue;
      }
      i = skip_block(i + 1, indent);
      continue;
    }
    const bool bullet = t.size() > 2 && (t[0] == '-' || t[0] == '*' || t[0] == '+') && t[1] == ' ';
    const size_t dot = t.find(". ");
    const bool enumerated = dot != std::string_view::npos && dot >= 1 && dot <= 3 &&
                            (std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '#') &&
                            t.substr(0, dot).find_first_not_of("0123456789#") == std::string_view::npos;
    if (in_para && (indent != para_indent || bullet || enumerated)) {
      const size_t next = end_paragraph(i);
      if (next != i) {
        i = next;
        continue;
      }
    }
    if (!in_para) {
      first_indent = indent;
      para_indent = bullet ? indent + 2 : enumerated ? indent + dot + 2 : indent;
      in_para = true;
    }
    text.add(bullet ? t.substr(2) : t);
    ++i;
  }
  end_paragraph(lines.size());
  return text.finish();
}

}  // namespace hsa::data

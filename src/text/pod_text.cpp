#include "text/pod_text.h"

#include <vector>

namespace hsa::data {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string entity(std::string_view name) {
  if (name == "lt") return "<";
  if (name == "gt") return ">";
  if (name == "verbar") return "|";
  if (name == "sol") return "/";
  if (name == "quot") return "\"";
  if (name == "amp") return "&";
  if (name == "apos") return "'";
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string_view::npos && name.size() < 4) {
    const int code = std::stoi(std::string(name));
    if (code >= 32 && code < 127) return std::string(1, static_cast<char>(code));
  }
  return "";
}

std::string link_text(std::string inner) {
  const size_t bar = inner.find('|');
  if (bar != std::string::npos) return inner.substr(0, bar);
  std::string out;
  for (char c : inner) {
    if (c == '"') continue;
    out += c == '/' ? ' ' : c;
  }
  const size_t a = out.find_first_not_of(' ');
  return a == std::string::npos ? "" : out.substr(a);
}

// Resolves formatting codes from s[i] until the closer of `brackets` '>' (0: the end of the text).
std::string formatted(std::string_view s, size_t& i, int brackets) {
  std::string out;
  while (i < s.size()) {
    if (brackets == 1 && s[i] == '>') {
      ++i;
      return out;
    }
    if (brackets > 1 && s[i] == '>' && s.substr(i, static_cast<size_t>(brackets)) == std::string(brackets, '>') &&
        (i == 0 || is_space(s[i - 1]))) {
      i += static_cast<size_t>(brackets);
      while (!out.empty() && is_space(out.back())) out.pop_back();
      return out;
    }
    const char c = s[i];
    if (c >= 'A' && c <= 'Z' && i + 1 < s.size() && s[i + 1] == '<') {
      size_t j = i + 1;
      int n = 0;
      while (j < s.size() && s[j] == '<') ++j, ++n;
      if (n > 1 && (j >= s.size() || !is_space(s[j]))) n = 1, j = i + 2;  // "C<<x>" reads as C< then "<x"
      if (n > 1)
        while (j < s.size() && is_space(s[j])) ++j;
      i = j;
      std::string inner = formatted(s, i, n);
      switch (c) {
        case 'E': out += entity(inner); break;
        case 'L': out += link_text(std::move(inner)); break;
        case 'X': case 'Z': break;
        default: out += inner; break;
      }
      continue;
    }
    out += is_space(c) ? ' ' : c;
    ++i;
  }
  return out;
}

std::string collapsed(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string inline_text(std::string_view s) {
  size_t i = 0;
  return collapsed(formatted(s, i, 0));
}

// Paragraphs: runs of lines separated by lines that are empty or whitespace only.
std::vector<std::string> paragraphs(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  size_t from = 0;
  while (from <= text.size()) {
    size_t end = text.find('\n', from);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(from, end - from);
    from = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      (current += line) += '\n';
    }
    if (end == text.size()) break;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

}  // namespace

std::string pod_to_text(std::string_view pod) {
  std::string out;
  auto emit = [&](const std::string& line) {
    if (!line.empty()) (out += line) += '\n';
  };
  bool in_pod = false;
  std::string skip_to;  // "=end <format>" while inside a =begin block
  for (const std::string& para : paragraphs(pod)) {
    if (para[0] == '=') {
      in_pod = true;
      size_t k = para.find_first_of(" \t\n");
      const std::string command = para.substr(1, k == std::string::npos ? std::string::npos : k - 1);
      const std::string arg = k == std::string::npos ? "" : para.substr(k + 1);
      if (!skip_to.empty()) {
        if (command == "end") skip_to.clear();
        continue;
      }
      if (command == "cut") in_pod = false;
      else if (command == "begin") skip_to = "end";
      else if (command.rfind("head", 0) == 0) emit(inline_text(arg));
      else if (command == "item") {
        const std::string t = inline_text(arg);
        if (t != "*" && t != "-") emit(t);
      }
      continue;  // =over =back =encoding =pod =for ...: no text
    }
    if (!in_pod || !skip_to.empty()) continue;
    if (para[0] == ' ' || para[0] == '\t') continue;  // verbatim: code and listings
    emit(inline_text(para));
  }
  return out;
}

}  // namespace hsa::data

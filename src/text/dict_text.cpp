#include "text/dict_text.h"

#include <cstdint>
#include <unordered_set>

namespace hsa::data {
namespace {

std::optional<uint64_t> dictd_number(std::string_view b64) {
  static constexpr std::string_view kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (b64.empty() || b64.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : b64) {
    const size_t d = kDigits.find(c);
    if (d == std::string_view::npos) return std::nullopt;
    v = v * 64 + d;
  }
  return v;
}

std::string_view trimmed(std::string_view s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string_view::npos) return {};
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// A source attribution or citation: "[1913 Webster]", "[\"A book\", 1988]."
bool bracketed(std::string_view t) {
  if (!t.empty() && t.back() == '.') t.remove_suffix(1);
  return t.size() >= 2 && t.front() == '[' && t.back() == ']';
}

// Removes \pronunciation\ spans (short, on one line) and {} and maps <> to ().
std::string cleaned_line(std::string_view line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\\') {
      const size_t end = line.find('\\', i + 1);
      if (end != std::string_view::npos && end - i <= 40) {
        i = end;
        const bool gap_follows = i + 1 < line.size() && (line[i + 1] == ' ' || line[i + 1] == ',');
        if (gap_follows && !out.empty() && out.back() == ' ') out.pop_back();  // "word \pron\, v." -> "word, v."
        continue;
      }
    }
    if (c == '{' || c == '}') continue;
    out += c == '<' ? '(' : c == '>' ? ')' : c;
  }
  return out;
}

}  // namespace

std::vector<DictEntry> dictd_entries(std::string_view index, std::string_view dict) {
  std::vector<DictEntry> out;
  std::unordered_set<uint64_t> offsets;
  for (size_t from = 0; from < index.size();) {
    size_t end = index.find('\n', from);
    if (end == std::string_view::npos) end = index.size();
    std::string_view line = index.substr(from, end - from);
    from = end + 1;
    const size_t t1 = line.find('\t'), t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string_view::npos) continue;
    std::string_view word = line.substr(0, t1);
    if (word.substr(0, 3) == "00-" || word.substr(0, 10) == "00database") continue;
    std::string_view len_text = line.substr(t2 + 1);
    if (const size_t t3 = len_text.find('\t'); t3 != std::string_view::npos) len_text = len_text.substr(0, t3);
    const std::optional<uint64_t> offset = dictd_number(line.substr(t1 + 1, t2 - t1 - 1));
    const std::optional<uint64_t> length = dictd_number(trimmed(len_text));
    if (!offset || !length || *offset + *length > dict.size()) continue;
    if (!offsets.insert(*offset).second) continue;
    out.push_back({std::string(word), std::string(dict.substr(*offset, *length))});
  }
  return out;
}

std::string dict_entry_text(std::string_view entry) {
  std::string out, paragraph;
  auto end_paragraph = [&] {
    std::string_view t = trimmed(paragraph);
    if (!t.empty() && !bracketed(t)) (out += t) += '\n';
    paragraph.clear();
  };
  for (size_t from = 0; from <= entry.size();) {
    size_t end = entry.find('\n', from);
    if (end == std::string_view::npos) end = entry.size();
    std::string_view t = trimmed(entry.substr(from, end - from));
    from = end + 1;
    if (t.empty()) {
      end_paragraph();
    } else if (!bracketed(t)) {
      if (!paragraph.empty()) paragraph += ' ';
      paragraph += cleaned_line(t);
    }
    if (end == entry.size()) break;
  }
  end_paragraph();
  return out;
}

std::optional<WordnetSynset> wordnet_synset(std::string_view line) {
  if (line.size() < 20 || line[0] == ' ') return std::nullopt;
  const size_t bar = line.find(" | ");
  std::vector<std::string_view> fields;
  std::string_view head = bar == std::string_view::npos ? line : line.substr(0, bar);
  for (size_t from = 0; from < head.size();) {
    size_t end = head.find(' ', from);
    if (end == std::string_view::npos) end = head.size();
    if (end > from) fields.push_back(head.substr(from, end - from));
    from = end + 1;
  }
  if (fields.size() < 4) return std::nullopt;
  WordnetSynset s;
  try {
    s.lexfile = std::stoi(std::string(fields[1]));
  } catch (...) {
    return std::nullopt;
  }
  const char type = fields[2].empty() ? '?' : fields[2][0];
  const char* pos = type == 'n' ? "noun" : type == 'v' ? "verb" : type == 'r' ? "adverb" : "adjective";
  size_t count = 0;
  for (char c : fields[3]) {
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    count = count * 16 + static_cast<size_t>(d);
  }
  if (count == 0 || fields.size() < 4 + 2 * count) return std::nullopt;
  for (size_t k = 0; k < count; ++k) {
    std::string word(fields[4 + 2 * k]);
    if (const size_t paren = word.find('('); paren != std::string::npos && word.back() == ')') word.resize(paren);
    for (char& c : word)
      if (c == '_') c = ' ';
    if (!s.words.empty()) s.words += ", ";
    s.words += word;
  }
  s.text = s.words + " (" + pos + ")";
  if (bar != std::string_view::npos) {
    std::string_view gloss = trimmed(line.substr(bar + 3));
    if (!gloss.empty()) (s.text += ": ") += gloss;
  }
  return s;
}

}  // namespace hsa::data

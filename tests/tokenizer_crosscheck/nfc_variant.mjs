// A variant of a tokenizer.json shaped like GPT-NeoX-20B's: an NFC normalizer and non-special added tokens
// for runs of spaces and tabs (appended after the vocabulary).
// Usage: node nfc_variant.mjs IN_FILE OUT_FILE
import fs from "node:fs";

const [inFile, outFile] = process.argv.slice(2);
const json = JSON.parse(fs.readFileSync(inFile, "utf8"));
json.normalizer = { type: "NFC" };
let next = Math.max(...Object.values(json.model.vocab), ...json.added_tokens.map((t) => t.id)) + 1;
for (const content of ["  ", "   ", "    ", "\t\t", "\n\n\n"])
  json.added_tokens.push({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
    special: false });
fs.writeFileSync(outFile, JSON.stringify(json));

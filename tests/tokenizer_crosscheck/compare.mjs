// Encodes TEXT_FILE with Hugging Face's tokenizers.js and compares every id with ours (space-separated ids in
// OUR_IDS_FILE). Prints the first difference with context and exits 1 when any id differs.
// Usage: node compare.mjs MODULE_DIR TOKENIZER_JSON TEXT_FILE OUR_IDS_FILE LABEL
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [moduleDir, tokenizerFile, textFile, oursFile, label] = process.argv.slice(2);
const { Tokenizer } = await import(
  pathToFileURL(path.join(moduleDir, "node_modules/@huggingface/tokenizers/dist/tokenizers.mjs")).href
);
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerFile, "utf8")), {});
const text = fs.readFileSync(textFile, "utf8");
const t0 = Date.now();
const theirs = tokenizer.encode(text, { add_special_tokens: false }).ids;
const ours = fs.readFileSync(oursFile, "utf8").trim().split(/\s+/).filter((s) => s.length > 0).map(Number);
let first = -1;
for (let i = 0; i < Math.max(ours.length, theirs.length); i++)
  if (ours[i] !== theirs[i]) {
    first = i;
    break;
  }
if (first < 0) {
  console.log(`${label}: ${ours.length} tokens from ${Buffer.byteLength(text)} bytes agree (HF in ${Date.now() - t0} ms)`);
  process.exit(0);
}
const show = (ids) => JSON.stringify(ids.slice(Math.max(0, first - 5), first + 5));
const pieces = (ids) => JSON.stringify(ids.slice(Math.max(0, first - 5), first + 5).map((id) => tokenizer.decode([id])));
console.log(`${label}: MISMATCH at token ${first} of ${ours.length} (ours) / ${theirs.length} (HF)`);
console.log(`  ours ${show(ours)} ${pieces(ours)}`);
console.log(`  HF   ${show(theirs)} ${pieces(theirs)}`);
process.exit(1);

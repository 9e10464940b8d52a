// Helpers shared by the data module's tests: scratch files under the build directory and the Qwen3 tokenizer
// fixture (installed by `make fixtures`; a missing fixture fails the test and says so).
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/io.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/test_fixtures.h"
#include "tokenizer/tokenizer.h"

namespace slime::data::test {

inline std::string scratch_path(const std::string& name) {
  const char* build = std::getenv("SLIME_BUILD_DIR");
  const std::string dir = path_join(build ? build : ".", "data_test_files");
  make_directories(dir);
  return path_join(dir, name);
}

// Writes `lines` joined by '\n' (with a final newline) and returns the path.
inline std::string write_lines(const std::string& name, const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  const std::string path = scratch_path(name);
  write_file_atomic(path, text);
  return path;
}

inline std::string qwen3_fixture(const std::string& file) { return tokenizer::test::fixture_path("qwen3", file); }

inline const tokenizer::Tokenizer& qwen3_tokenizer() { return tokenizer::test::fixture_tokenizer("qwen3"); }

inline const tokenizer::ChatTemplate& qwen3_chat_template() {
  static const tokenizer::ChatTemplate loaded =
      tokenizer::ChatTemplate::from_tokenizer_config(qwen3_fixture("tokenizer_config.json"));
  return loaded;
}

}  // namespace slime::data::test

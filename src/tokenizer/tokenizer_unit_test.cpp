// Unit tests on tiny hand-written tokenizer.json files (written to a per-process folder under /tmp): merge order,
// ignore_merges, unk / byte fallback, added-token matching (lstrip, rstrip, single_word, normalized), split
// behaviors, Digits, ByteLevel, post-processors, normalizers, regex semantics, lossy UTF-8 and load errors.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pcre_regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"

using slime::json;
using slime::tokenizer::Tokenizer;
using Catch::Matchers::Contains;
using Ids = std::vector<int32_t>;

namespace {

// A folder for this process's tokenizer files, removed when the test program exits.
struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("slime_tokenizer_test_" + std::to_string(getpid()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string write_file(const std::string& name, const std::string& contents) {
  static TempDir dir;
  const std::string path = (dir.path / name).string();
  slime::write_file_atomic(path, contents);
  return path;
}

Tokenizer load(const json& document) {
  static int counter = 0;
  return Tokenizer::from_file(write_file("tokenizer_" + std::to_string(counter++) + ".json", document.dump()));
}

// A tokenizer over plain characters: vocab = the given tokens with ids 0.., no pre-tokenizer, no decoder.
json char_tokenizer(const std::vector<std::string>& tokens, const std::vector<std::string>& merges) {
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

// A byte-level tokenizer: ids 0..255 are the 256 byte chars, then `extra` tokens (written in byte chars).
json byte_level_tokenizer(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[slime::tokenizer::byte_to_unicode(static_cast<uint8_t>(b))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  json document = char_tokenizer({}, merges);
  document["model"]["vocab"] = vocab;
  document["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  document["decoder"] = {{"type", "ByteLevel"}};
  return document;
}

json added_token(int id, const std::string& content, bool special, bool lstrip = false, bool rstrip = false,
                 bool single_word = false, bool normalized = false) {
  return {{"id", id},       {"content", content},         {"special", special},      {"lstrip", lstrip},
          {"rstrip", rstrip}, {"single_word", single_word}, {"normalized", normalized}};
}

}  // namespace

TEST_CASE("BPE merges by rank, then leftmost", "[tokenizer]") {
  const std::vector<std::string> vocab = {"a", "b", "c", "d", "ab", "bc", "cd", "abc", "aa"};
  // b c (rank 0) wins over a b: a, bc, d; nothing else applies.
  CHECK(load(char_tokenizer(vocab, {"b c", "a b", "c d"})).encode("abcd") == Ids{0, 5, 3});
  // c d first, then a b: ab, cd.
  CHECK(load(char_tokenizer(vocab, {"c d", "a b", "b c"})).encode("abcd") == Ids{4, 6});
  // A merge of merges: a bc -> abc.
  CHECK(load(char_tokenizer(vocab, {"b c", "a bc"})).encode("abc") == Ids{7});
  // Equal ranks merge left to right: aaa -> aa a, aaaa -> aa aa.
  const Tokenizer repeated = load(char_tokenizer(vocab, {"a a"}));
  CHECK(repeated.encode("aaa") == Ids{8, 0});
  CHECK(repeated.encode("aaaa") == Ids{8, 8});
  // Merges given as [a, b] pairs behave the same.
  json pairs = char_tokenizer(vocab, {});
  pairs["model"]["merges"] = json::array({json::array({"c", "d"}), json::array({"a", "b"})});
  CHECK(load(pairs).encode("abcd") == Ids{4, 6});
}

TEST_CASE("BPE merges a long word through a hierarchy of merges", "[tokenizer]") {
  // Tokens (ab)^(2^k) for k = 0..10, each the merge of two copies of the previous one.
  std::vector<std::string> vocab = {"a", "b"}, merges;
  std::string token = "ab";
  merges.push_back("a b");
  vocab.push_back(token);
  for (int k = 1; k <= 10; ++k) {
    merges.push_back(token + " " + token);
    token += token;
    vocab.push_back(token);
  }
  const Tokenizer tokenizer = load(char_tokenizer(vocab, merges));
  std::string word;
  for (int i = 0; i < 16 * 1024 + 1; ++i) word += "ab";  // 16 copies of the largest token, then "ab"
  Ids expected(16, static_cast<int32_t>(vocab.size() - 1));
  expected.push_back(2);
  CHECK(tokenizer.encode(word) == expected);
}

TEST_CASE("ignore_merges emits a word found whole in the vocab", "[tokenizer]") {
  json document = char_tokenizer({"a", "b", "c", "abc", "ab"}, {"a b"});
  CHECK(load(document).encode("abc") == Ids{4, 2});
  document["model"]["ignore_merges"] = true;
  CHECK(load(document).encode("abc") == Ids{3});
  CHECK(load(document).encode("abca") == Ids{4, 2, 0});  // not whole: merges as usual
}

TEST_CASE("unknown characters: unk, fuse_unk, byte_fallback, or dropped as HF drops them", "[tokenizer]") {
  json document = char_tokenizer({"<unk>", "a", "<0xC3>", "<0xA9>"}, {});
  CHECK(load(document).encode("a\xC3\xA9xa") == Ids{1, 1});  // no unk, no fallback: HF drops them
  document["model"]["unk_token"] = "<unk>";
  CHECK(load(document).encode("a\xC3\xA9xa") == Ids{1, 0, 0, 1});
  document["model"]["fuse_unk"] = true;
  CHECK(load(document).encode("a\xC3\xA9xa") == Ids{1, 0, 1});
  document["model"]["byte_fallback"] = true;
  CHECK(load(document).encode("a\xC3\xA9xa") == Ids{1, 2, 3, 0, 1});  // é has byte tokens, x does not
}

TEST_CASE("added tokens: leftmost-longest, lstrip, rstrip, single_word, normalized", "[tokenizer]") {
  json document = byte_level_tokenizer({}, {});
  document["added_tokens"] = {added_token(256, "<m>", true),      added_token(257, "<mask>", true, true, true),
                              added_token(258, "cat", false, false, false, true),
                              added_token(259, "<m", false)};
  const Tokenizer tokenizer = load(document);
  const auto bytes = [](const std::string& text) {
    Ids ids;
    for (char c : text) ids.push_back(static_cast<uint8_t>(c));
    return ids;
  };
  // Leftmost, then longest: "<m>" beats "<m"; "<mask>" eats the spaces around it.
  CHECK(tokenizer.encode("x<m>y") == Ids{'x', 256, 'y'});
  CHECK(tokenizer.encode("x<mz") == Ids{'x', 259, 'z'});
  CHECK(tokenizer.encode("a  <mask>  b") == Ids{'a', 257, 'b'});
  CHECK(tokenizer.encode("<mask>\n\tb") == Ids{257, 'b'});
  // lstrip never reaches into the previous added token.
  CHECK(tokenizer.encode("<m> <mask>") == Ids{256, 257});
  // single_word: "cat" only when not glued to word characters.
  CHECK(tokenizer.encode("a cat!") == Ids{'a', ' ', 258, '!'});
  CHECK(tokenizer.encode("concat") == bytes("concat"));
  CHECK(tokenizer.encode("cats") == bytes("cats"));
  CHECK(tokenizer.decode({'a', 257, 'b'}) == "a<mask>b");
  CHECK(tokenizer.is_special(257));
  CHECK_FALSE(tokenizer.is_special(258));
  CHECK(tokenizer.decode({'a', 257, 258}, true) == "acat");

  // normalized=true tokens are matched after the normalizer, in normalized form.
  json lowered = byte_level_tokenizer({}, {});
  lowered["normalizer"] = {{"type", "Lowercase"}};
  lowered["added_tokens"] = {added_token(256, "HELLO", false, false, false, false, true),
                             added_token(257, "[RAW]", true)};
  const Tokenizer lower = load(lowered);
  CHECK(lower.encode("Hello[RAW]HeLLo") == Ids{256, 257, 256});
  CHECK(lower.encode("[raw]") == bytes("[raw]"));  // normalized=false tokens match the raw text only
  CHECK(lower.id_to_token(256) == "hello");          // HF reports the normalized form
  CHECK(lower.token_to_id("HELLO") == 256);
}

TEST_CASE("added token ids are assigned as HF's deserializer assigns them", "[tokenizer]") {
  json document = char_tokenizer({"a", "b", "<x>"}, {});
  // "<x>" is in the vocab (id 2); "<y>" is new and gets the first id after the vocab entries (3), whatever the file
  // says; the duplicate entry is ignored.
  document["added_tokens"] = {added_token(7, "<x>", true), added_token(9, "<y>", true), added_token(9, "<y>", true)};
  const Tokenizer tokenizer = load(document);
  CHECK(tokenizer.token_to_id("<x>") == 2);
  CHECK(tokenizer.token_to_id("<y>") == 3);
  CHECK(tokenizer.vocab_size() == 4);
  CHECK(tokenizer.encode("a<y>b<x>") == Ids{0, 3, 1, 2});
}

TEST_CASE("Split pre-tokenizer behaviors and invert", "[tokenizer]") {
  const std::vector<std::string> vocab = {"a", "b", "c", "-", "a-", "b-", "-b", "-c", "--"};
  json document = char_tokenizer(vocab, {"a -", "b -", "- b", "- c", "- -"});
  const auto encode_with = [&](const std::string& behavior, bool invert) {
    document["pre_tokenizer"] = {
        {"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
    return load(document).encode("a-b--c");
  };
  CHECK(encode_with("Isolated", false) == Ids{0, 3, 1, 3, 3, 2});
  CHECK(encode_with("Removed", false) == Ids{0, 1, 2});
  CHECK(encode_with("MergedWithPrevious", false) == Ids{4, 5, 3, 2});
  CHECK(encode_with("MergedWithNext", false) == Ids{0, 6, 3, 7});
  CHECK(encode_with("Contiguous", false) == Ids{0, 3, 1, 8, 2});
  CHECK(encode_with("Removed", true) == Ids{3, 3, 3});
  // A regex pattern, and a Sequence of two pre-tokenizers.
  document["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "b+"}}}, {"behavior", "Removed"}, {"invert", false}},
        {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "MergedWithNext"}, {"invert", false}}}}};
  CHECK(load(document).encode("a-b--c") == Ids{0, 3, 3, 7});
}

TEST_CASE("Digits pre-tokenizer", "[tokenizer]") {
  json document = char_tokenizer({"a", "1", "2", "3", "12", "123", "\xD9\xA3"}, {"1 2", "12 3"});
  document["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", true}};
  CHECK(load(document).encode("a123") == Ids{0, 1, 2, 3});
  document["pre_tokenizer"]["individual_digits"] = false;
  CHECK(load(document).encode("a123") == Ids{0, 5});
  CHECK(load(document).encode("1\xD9\xA3" "2") == Ids{1, 6, 2});  // Arabic-Indic 3 is numeric, but has no merge
}

TEST_CASE("ByteLevel pre-tokenizer and decoder", "[tokenizer]") {
  const std::string G = slime::tokenizer::byte_to_unicode(' ');  // "Ġ"
  CHECK(G == "\xC4\xA0");
  json document = byte_level_tokenizer({G + "h", G + "hi", "hi"}, {G + " h", G + "h i", "h i"});
  CHECK(load(document).encode("hi hi") == Ids{258, 257});
  // use_regex splits "hi hi" into "hi" and " hi" before BPE; without it the whole text is one word.
  document["pre_tokenizer"]["use_regex"] = false;
  CHECK(load(document).encode("hi hi") == Ids{258, 257});
  CHECK(load(document).encode("hihi") == Ids{258, 258});
  document["pre_tokenizer"]["add_prefix_space"] = true;
  CHECK(load(document).encode("hi") == Ids{257});
  CHECK(load(document).encode(" hi") == Ids{257});

  const Tokenizer tokenizer = load(document);
  CHECK(tokenizer.decode({257, 258}) == " hihi");
  CHECK(tokenizer.decode({0xE4, 0xBD, 0xA0}) == "\xE4\xBD\xA0");                      // 你 from its bytes
  CHECK(tokenizer.decode({0xE4, 0xBD, 'x'}) == "\xEF\xBF\xBDx");                      // truncated: one U+FFFD
  CHECK(tokenizer.decode({0xC0, 0xAF}) == "\xEF\xBF\xBD\xEF\xBF\xBD");                // never-valid bytes: one each
  CHECK(tokenizer.decode({0xF0, 0x9F, 0x98}) == "\xEF\xBF\xBD");                       // cut emoji at the end
}

TEST_CASE("post-processors: TemplateProcessing, Bert, Sequence", "[tokenizer]") {
  json document = char_tokenizer({"<s>", "</s>", "a", "b", "ab"}, {"a b"});
  document["added_tokens"] = {added_token(0, "<s>", true), added_token(1, "</s>", true)};
  document["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
      {"pair", json::array()},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
        {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}}}};
  const Tokenizer with_template = load(document);
  CHECK(with_template.encode("ab", true) == Ids{0, 4, 1});
  CHECK(with_template.encode("ab", false) == Ids{4});
  CHECK(with_template.encode("", true) == Ids{0, 1});
  CHECK(with_template.decode({0, 4, 1}, true) == "ab");
  CHECK(with_template.decode({0, 4, 1}, false) == "<s> ab </s>");  // no decoder: HF joins tokens with spaces

  // The string form of template pieces, inside a Sequence after ByteLevel.
  document["post_processor"] = {{"type", "Sequence"},
                                {"processors",
                                 {{{"type", "ByteLevel"}},
                                  {{"type", "TemplateProcessing"},
                                   {"single", {"<s>", "$A"}},
                                   {"special_tokens", document["post_processor"]["special_tokens"]}}}}};
  CHECK(load(document).encode("ab", true) == Ids{0, 4});
  document["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"</s>", 1}}, {"cls", {"<s>", 0}}};
  CHECK(load(document).encode("ab", true) == Ids{0, 4, 1});
}

TEST_CASE("normalizers", "[tokenizer]") {
  using slime::tokenizer::normalize;
  using slime::tokenizer::parse_normalizer;
  const auto apply = [](const json& config, std::string text) {
    normalize(parse_normalizer(config, "test normalizer"), text);
    return text;
  };
  CHECK(apply({{"type", "NFC"}}, "e\xCC\x81") == "\xC3\xA9");
  CHECK(apply({{"type", "NFD"}}, "\xC3\xA9") == "e\xCC\x81");
  CHECK(apply({{"type", "NFKC"}}, "\xEF\xAC\x81") == "fi");          // ligature fi
  CHECK(apply({{"type", "NFC"}}, std::string("a\0b", 3)) == std::string("a\0b", 3));
  CHECK(apply({{"type", "Lowercase"}}, "\xC3\x89T\xC3\xA9 \xC4\xB0") == "\xC3\xA9t\xC3\xA9 i\xCC\x87");
  CHECK(apply({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, "hi") == "\xE2\x96\x81hi");
  CHECK(apply({{"type", "Prepend"}, {"prepend", "_"}}, "").empty());
  CHECK(apply({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}, "a b  c") == "a_b__c");
  CHECK(apply({{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}}, "a \t\nb") == "a b");
  CHECK(apply({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, " \xE3\x80\x80x ") == "x ");
  CHECK(apply({{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "Lowercase"}}}}}, "\xC3\x89") ==
        "e\xCC\x81");
  CHECK_THROWS_WITH(apply({{"type", "BertNormalizer"}}, "x"),
                    Contains("test normalizer") && Contains("unsupported normalizer type 'BertNormalizer'"));
}

TEST_CASE("regex: Oniguruma's empty-match rule and \\s as White_Space", "[tokenizer]") {
  using slime::tokenizer::PcreRegex;
  const auto spans = [](const std::string& pattern, const std::string& text) {
    std::vector<std::pair<size_t, size_t>> out;
    for (const auto& match : PcreRegex(pattern, false, "test").find_all(text)) out.emplace_back(match.begin, match.end);
    return out;
  };
  using Spans = std::vector<std::pair<size_t, size_t>>;
  CHECK(spans("x*", "axb") == Spans{{0, 0}, {1, 2}, {3, 3}});
  CHECK(spans("\\s+", "a \xC2\x85 b") == Spans{{1, 5}});              // NEL is White_Space
  CHECK(spans("\\s", "a\xE1\xA0\x8E" "b").empty());                    // U+180E is not (PCRE2's own \s says yes)
  CHECK(spans("[^\\s\\p{L}]+", "ab 12!\xE1\xA0\x8E") == Spans{{3, 9}});
  CHECK(spans("\\Q\\s\\E", "a\\sb") == Spans{{1, 3}});                 // quoted text is left alone
  CHECK(spans("(?i:'s)", "it'S") == Spans{{2, 4}});
  CHECK_THROWS_WITH(PcreRegex("(unclosed", false, "file.json: pre_tokenizer.pattern"),
                    Contains("file.json: pre_tokenizer.pattern") && Contains("cannot compile regex '(unclosed'"));
}

TEST_CASE("lossy UTF-8 replaces each maximal invalid subsequence once", "[tokenizer]") {
  using slime::tokenizer::utf8_first_invalid;
  using slime::tokenizer::utf8_lossy;
  const std::string R = "\xEF\xBF\xBD";
  CHECK(utf8_lossy("plain \xE4\xBD\xA0") == "plain \xE4\xBD\xA0");
  CHECK(utf8_lossy("\x80") == R);
  CHECK(utf8_lossy("\xE4\xBD") == R);
  CHECK(utf8_lossy("\xF0\x9F\x98" "a") == R + "a");
  CHECK(utf8_lossy("\xED\xA0\x80") == R + R + R);  // surrogate: ED then two lone continuation bytes
  CHECK(utf8_lossy("\xF4\x90\x80\x80") == R + R + R + R);  // above U+10FFFF
  CHECK(utf8_lossy("\xE0\x80\xAF") == R + R + R);          // overlong
  CHECK(utf8_lossy("\xFF\xFE") == R + R);
  CHECK(utf8_first_invalid("ok \xE4\xBD\xA0") == std::string::npos);
  CHECK(utf8_first_invalid("ok\xE4\xBD") == 2);
}

TEST_CASE("load errors name the file and the field", "[tokenizer]") {
  CHECK_THROWS_WITH(Tokenizer::from_file("/nonexistent/tokenizer.json"),
                    Contains("/nonexistent/tokenizer.json") && Contains("not found"));
  const std::string malformed = write_file("malformed.json", "{\"model\": {");
  CHECK_THROWS_WITH(Tokenizer::from_file(malformed), Contains(malformed) && Contains("malformed JSON"));

  const json good = char_tokenizer({"a", "b", "ab"}, {"a b"});
  const auto error_of = [](const json& document) {
    try {
      load(document);
    } catch (const slime::Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  json unigram = good;
  unigram["model"] = {{"type", "Unigram"}, {"vocab", json::array()}};
  CHECK_THAT(error_of(unigram), Contains("tokenizer_") && Contains("model: unsupported model type 'Unigram'"));
  json missing_merge_token = good;
  missing_merge_token["model"]["merges"] = {"a b", "b c"};
  CHECK_THAT(error_of(missing_merge_token), Contains("model.merges[1]: token 'c' is not in the vocab"));
  json missing_merged = good;
  missing_merged["model"]["merges"] = {"b a"};
  CHECK_THAT(error_of(missing_merged), Contains("model.merges[0]: merged token 'ba' is not in the vocab"));
  json bad_merge = good;
  bad_merge["model"]["merges"] = {"a b c"};
  CHECK_THAT(error_of(bad_merge), Contains("model.merges[0]: expected two tokens separated by one space"));
  json no_model = good;
  no_model.erase("model");
  CHECK_THAT(error_of(no_model), Contains("field 'model' is missing"));
  json bad_pre = good;
  bad_pre["pre_tokenizer"] = {{"type", "Metaspace"}};
  CHECK_THAT(error_of(bad_pre), Contains("pre_tokenizer: unsupported pre_tokenizer type 'Metaspace'"));
  json bad_regex = good;
  bad_regex["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "[a-"}}}, {"behavior", "Isolated"}, {"invert", false}};
  CHECK_THAT(error_of(bad_regex), Contains("pre_tokenizer.pattern: cannot compile regex '[a-'"));
  json bad_behavior = bad_regex;
  bad_behavior["pre_tokenizer"]["pattern"] = {{"Regex", "a"}};
  bad_behavior["pre_tokenizer"]["behavior"] = "Sideways";
  CHECK_THAT(error_of(bad_behavior), Contains("field 'behavior': unknown value 'Sideways'"));
  json bad_decoder = good;
  bad_decoder["decoder"] = {{"type", "WordPiece"}};
  CHECK_THAT(error_of(bad_decoder), Contains("decoder: unsupported decoder type 'WordPiece'"));
  json bad_template = good;
  bad_template["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {"<bos>", "$A"}},
                                    {"special_tokens", json::object()}};
  CHECK_THAT(error_of(bad_template),
             Contains("post_processor.single[0]: special token '<bos>' is not listed in special_tokens"));
  json truncating = good;
  truncating["truncation"] = {{"max_length", 8}};
  CHECK_THAT(error_of(truncating), Contains("field 'truncation' is set"));
  json dropout = good;
  dropout["model"]["dropout"] = 0.1;
  CHECK_THAT(error_of(dropout), Contains("field 'dropout'"));
  json bad_added = good;
  bad_added["added_tokens"] = {{{"content", "<x>"}}};
  CHECK_THAT(error_of(bad_added), Contains("added_tokens[0]") && Contains("'id'"));
}

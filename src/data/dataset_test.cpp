// PromptDataset tests: ports of slime's tests/test_read_file_slicing.py and tests/test_filter_long_prompt.py
// (text prompts; the multimodal processor path does not exist here), the Qwen3 chat template through the
// dataset, and each load error with its file:line message.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "data/data_test_util.h"
#include "data/dataset.h"

using slime::data::ordered_json;
using slime::data::parse_sliced_path;
using slime::data::PromptDataset;
using slime::data::PromptDatasetOptions;
using namespace slime::data::test;

namespace {

// slime's fixture: ten rows; ours carry a prompt too and read "id" as the label.
std::string ten_rows() {
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) lines.push_back(slime::cat(R"({"input": "row )", i, R"(", "id": )", i, "}"));
  return write_lines("ten_rows.jsonl", lines);
}

std::vector<int> ids(const std::string& spec) {
  PromptDatasetOptions options;
  options.label_key = "id";
  const PromptDataset dataset = PromptDataset::load(spec, options);
  std::vector<int> out;
  for (const auto& sample : dataset.samples()) out.push_back(sample.label.get<int>());
  return out;
}

std::vector<int> range(int first, int last) {
  std::vector<int> out;
  for (int i = first; i < last; ++i) out.push_back(i);
  return out;
}

std::string prompt_row(const std::string& prompt) { return ordered_json{{"input", prompt}}.dump(); }

}  // namespace

TEST_CASE("parse_sliced_path splits path@[start:end]", "[dataset]") {
  auto check = [](const std::string& spec, const std::string& path, bool has_slice, std::optional<int64_t> start,
                  std::optional<int64_t> end) {
    const auto parsed = parse_sliced_path(spec);
    CHECK(parsed.path == path);
    CHECK(parsed.has_slice == has_slice);
    CHECK(parsed.start == start);
    CHECK(parsed.end == end);
  };
  check("/a/b.jsonl", "/a/b.jsonl", false, std::nullopt, std::nullopt);
  check("/a/b.jsonl@[3:7]", "/a/b.jsonl", true, 3, 7);
  check("/a/b.jsonl@[-100:]", "/a/b.jsonl", true, -100, std::nullopt);
  check("/a/b.jsonl@[:-2]", "/a/b.jsonl", true, std::nullopt, -2);
  check("/a/b.jsonl@[:]", "/a/b.jsonl", true, std::nullopt, std::nullopt);
}

TEST_CASE("no slice reads every row", "[dataset]") { CHECK(ids(ten_rows()) == range(0, 10)); }

TEST_CASE("non-negative slices", "[dataset]") {
  const std::string path = ten_rows();
  CHECK(ids(path + "@[0:3]") == std::vector<int>{0, 1, 2});
  CHECK(ids(path + "@[3:]") == std::vector<int>{3, 4, 5, 6, 7, 8, 9});
  CHECK(ids(path + "@[:4]") == std::vector<int>{0, 1, 2, 3});
  CHECK(ids(path + "@[8:100]") == std::vector<int>{8, 9});
}

TEST_CASE("negative slices count from the end", "[dataset]") {
  const std::string path = ten_rows();
  CHECK(ids(path + "@[-3:]") == std::vector<int>{7, 8, 9});
  CHECK(ids(path + "@[:-2]") == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(ids(path + "@[1:-1]") == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(ids(path + "@[-5:-2]") == std::vector<int>{5, 6, 7});
  CHECK(ids(path + "@[-100:]") == range(0, 10));  // larger than the file: the whole file
}

TEST_CASE("rows are the non-blank lines; source lines are 1-based file lines", "[dataset]") {
  const std::string path = write_lines("blank_lines.jsonl", {"", prompt_row("a"), "   ", "", prompt_row("b"), "\t"});
  const PromptDataset dataset = PromptDataset::load(path + "@[1:]", PromptDatasetOptions{});
  REQUIRE(dataset.size() == 1);
  CHECK(dataset[0].prompt == "b");
  CHECK(dataset.source_lines() == std::vector<int64_t>{5});
}

TEST_CASE("label, metadata and tools fields", "[dataset]") {
  const std::string path = write_lines(
      "fields.jsonl",
      {R"({"question": "q0", "answer": "34", "meta": {"source_name": "math", "rm_type": "deepscaler"}, "fn": [{"type": "function", "function": {"name": "f"}}]})",
       R"({"question": "q1", "answer": null, "meta": null, "fn": "[{\"b\": 1, \"a\": 2}]"})",
       R"({"question": "q2", "answer": 5})"});
  PromptDatasetOptions options;
  options.input_key = "question";
  options.label_key = "answer";
  options.metadata_key = "meta";
  options.tool_key = "fn";
  options.tokenizer = &qwen3_tokenizer();
  const PromptDataset dataset = PromptDataset::load(path, options);
  REQUIRE(dataset.size() == 3);
  CHECK(dataset[0].prompt == "q0");
  CHECK(dataset[0].label == "34");
  // Metadata keeps file order; tools are copied into it as slime does.
  CHECK(dataset[0].metadata.dump() ==
        R"({"source_name":"math","rm_type":"deepscaler","tools":[{"type":"function","function":{"name":"f"}}]})");
  CHECK(dataset[0].tools[0]["function"]["name"] == "f");
  CHECK(dataset[1].label.is_null());
  CHECK(dataset[1].tools.dump() == R"([{"b":1,"a":2}])");  // a JSON string is parsed, order kept
  CHECK(dataset[2].metadata == ordered_json::object());
  CHECK(dataset[2].tools.is_null());
  CHECK(dataset[2].label == 5);
  // Prompts are tokenised once, without special tokens (slime's rollout encodes with add_special_tokens=False).
  CHECK(dataset[0].tokens == qwen3_tokenizer().encode("q0", false));
  CHECK(dataset[0].response_length == 0);
  CHECK(dataset[0].prompt_length() == static_cast<int64_t>(dataset[0].tokens.size()));
}

TEST_CASE("max_prompt_len drops long prompts and keeps the order", "[dataset]") {
  // slime's test_preserves_order_when_some_are_filtered, text prompts: p1 and p3 are far over the limit.
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += " word";
  const std::vector<std::string> prompts = {"p0 short", "p1" + long_text, "p2 short", "p3" + long_text, "p4 short",
                                            "p5 short"};
  std::vector<std::string> lines;
  for (const auto& prompt : prompts) lines.push_back(prompt_row(prompt));
  const std::string path = write_lines("long_prompts.jsonl", lines);

  PromptDatasetOptions options;
  options.tokenizer = &qwen3_tokenizer();
  options.max_prompt_len = 100;
  const PromptDataset dataset = PromptDataset::load(path, options);
  std::vector<std::string> kept;
  for (const auto& sample : dataset.samples()) kept.push_back(sample.prompt.get<std::string>());
  CHECK(kept == std::vector<std::string>{"p0 short", "p2 short", "p4 short", "p5 short"});
  CHECK(dataset.dropped_long_prompts() == 2);
  CHECK(dataset.rows_read() == 6);
  CHECK(dataset.source_lines() == std::vector<int64_t>{1, 3, 5, 6});

  // Nothing over the limit: everything kept in order (test_preserves_order_when_nothing_is_filtered).
  options.max_prompt_len = 1000;
  CHECK(PromptDataset::load(path, options).size() == 6);
  CHECK(PromptDataset::load(path, options).dropped_long_prompts() == 0);
}

TEST_CASE("max_prompt_len keeps a prompt of exactly that many tokens", "[dataset]") {
  const std::string prompt = "The quick brown fox jumps over the lazy dog.";
  const auto count = static_cast<int64_t>(qwen3_tokenizer().encode(prompt, false).size());
  REQUIRE(count > 3);
  const std::string path = write_lines("boundary.jsonl", {prompt_row(prompt), prompt_row("x")});
  PromptDatasetOptions options;
  options.tokenizer = &qwen3_tokenizer();
  options.max_prompt_len = count;
  CHECK(PromptDataset::load(path, options).size() == 2);
  options.max_prompt_len = count - 1;
  const PromptDataset dropped = PromptDataset::load(path, options);
  REQUIRE(dropped.size() == 1);
  CHECK(dropped[0].prompt == "x");
}

TEST_CASE("message-list prompts without a chat template are not length-filtered (as slime)", "[dataset]") {
  const std::string path = write_lines(
      "messages_raw.jsonl",
      {R"({"input": [{"role": "user", "content": "a very long question that would not fit in 2 tokens"}]})"});
  PromptDatasetOptions options;
  options.tokenizer = &qwen3_tokenizer();
  options.max_prompt_len = 2;
  const PromptDataset dataset = PromptDataset::load(path, options);
  REQUIRE(dataset.size() == 1);
  CHECK(dataset[0].prompt.is_array());
  CHECK(dataset[0].tokens.empty());  // no rendering without the template: nothing to tokenise
}

TEST_CASE("apply_chat_template renders through the Qwen3 template", "[dataset][chat_template]") {
  const auto& chat = qwen3_chat_template();
  const auto& tok = qwen3_tokenizer();
  // Tool definitions in a deliberately non-alphabetical key order: tojson must print them as written.
  const std::string tools_text =
      R"([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "description": "City name"}}}, "description": "Weather now"}}])";
  const std::string path = write_lines(
      "chat.jsonl",
      {R"({"input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}], "tools": )" +
           tools_text + "}",
       R"({"input": "What is 2+2?"})"});
  PromptDatasetOptions options;
  options.apply_chat_template = true;
  options.chat_template = &chat;
  options.tokenizer = &tok;
  const PromptDataset dataset = PromptDataset::load(path, options);
  REQUIRE(dataset.size() == 2);

  const ordered_json messages = ordered_json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}])");
  const ordered_json tools = ordered_json::parse(tools_text);
  const std::string expected0 = chat.apply(messages, true, tools, ordered_json::object());
  CHECK(dataset[0].prompt == expected0);
  // Python's json.dumps of the tool, keys in file order.
  CHECK_THAT(expected0, Catch::Contains(
                            R"({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "description": "City name"}}}, "description": "Weather now"}})"));
  CHECK(dataset[0].tokens == tok.encode(expected0, false));
  CHECK(dataset[0].metadata["tools"].dump() == tools.dump());

  // A string prompt becomes one user message (slime's _build_messages).
  const std::string expected1 = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
  CHECK(dataset[1].prompt == expected1);
  CHECK(dataset[1].tokens == tok.encode(expected1, false));

  // Template kwargs reach the template: Qwen3 closes an empty think block when thinking is off.
  options.apply_chat_template_kwargs = ordered_json{{"enable_thinking", false}};
  const PromptDataset no_thinking = PromptDataset::load(path + "@[1:]", options);
  CHECK(no_thinking[0].prompt == expected1 + "<think>\n\n</think>\n\n");

  // Length filter applies to the rendered prompt.
  options.apply_chat_template_kwargs = ordered_json::object();
  options.max_prompt_len = static_cast<int64_t>(dataset[1].tokens.size());
  const PromptDataset filtered = PromptDataset::load(path, options);
  REQUIRE(filtered.size() == 1);
  CHECK(filtered[0].prompt == expected1);
  CHECK(filtered.dropped_long_prompts() == 1);
}

TEST_CASE("load errors name the file, the line and the field", "[dataset][errors]") {
  PromptDatasetOptions options;
  const std::string missing = scratch_path("no_such_file.jsonl");
  CHECK_THROWS_WITH(PromptDataset::load(missing, options),
                    Catch::Contains("prompt dataset '" + missing + "' does not exist"));
  CHECK_THROWS_WITH(PromptDataset::load(missing + "@[0:5]", options),
                    Catch::Contains("'" + missing + "' does not exist"));

  const std::string malformed = write_lines("malformed.jsonl", {prompt_row("a"), "", R"({"input": "b",)"});
  CHECK_THROWS_WITH(PromptDataset::load(malformed, options),
                    Catch::Contains(malformed + ":3: malformed JSON"));

  const std::string no_key = write_lines("no_key.jsonl", {prompt_row("a"), R"({"prompt": "b"})"});
  CHECK_THROWS_WITH(PromptDataset::load(no_key, options),
                    Catch::Contains(no_key + ":2: field 'input' (--input-key) is missing"));

  const std::string wrong_type = write_lines("wrong_type.jsonl", {R"({"input": 17})"});
  CHECK_THROWS_WITH(PromptDataset::load(wrong_type, options),
                    Catch::Contains(wrong_type + ":1: field 'input': expected a string or a list of messages, got "
                                                 "integer"));
  const std::string bad_message = write_lines("bad_message.jsonl", {R"({"input": ["hi"]})"});
  CHECK_THROWS_WITH(PromptDataset::load(bad_message, options),
                    Catch::Contains(bad_message + ":1: field 'input' message 0: expected an object, got string"));
  const std::string not_object = write_lines("not_object.jsonl", {R"(["a"])"});
  CHECK_THROWS_WITH(PromptDataset::load(not_object, options),
                    Catch::Contains(not_object + ":1: expected a JSON object, got array"));

  const std::string bad_metadata = write_lines("bad_metadata.jsonl", {R"({"input": "a", "metadata": "x"})"});
  CHECK_THROWS_WITH(PromptDataset::load(bad_metadata, options),
                    Catch::Contains(bad_metadata + ":1: field 'metadata' (--metadata-key): expected an object, got "
                                                   "string"));
  const std::string bad_tools = write_lines("bad_tools.jsonl", {R"({"input": "a", "tools": {"name": "f"}})"});
  CHECK_THROWS_WITH(PromptDataset::load(bad_tools, options),
                    Catch::Contains(bad_tools + ":1: field 'tools' (--tool-key): expected a list of tools, got "
                                                "object"));
  const std::string bad_tool_string = write_lines("bad_tool_string.jsonl", {R"({"input": "a", "tools": "[{"})"});
  CHECK_THROWS_WITH(PromptDataset::load(bad_tool_string, options),
                    Catch::Contains(bad_tool_string + ":1: field 'tools' (--tool-key): the string is not valid JSON"));

  PromptDatasetOptions with_label = options;
  with_label.label_key = "label";
  const std::string no_label = write_lines("no_label.jsonl", {R"({"input": "a", "label": 1})", R"({"input": "b"})"});
  CHECK_THROWS_WITH(PromptDataset::load(no_label, with_label),
                    Catch::Contains(no_label + ":2: field 'label' (--label-key) is missing"));

  const std::string empty = write_lines("empty.jsonl", {});
  CHECK_THROWS_WITH(PromptDataset::load(empty, options), Catch::Contains("'" + empty + "' has no prompts"));
  const std::string blank = write_lines("blank.jsonl", {"", "  "});
  CHECK_THROWS_WITH(PromptDataset::load(blank, options), Catch::Contains("'" + blank + "' has no prompts"));

  const std::string rows = ten_rows();
  CHECK_THROWS_WITH(PromptDataset::load(rows + "@[a:b]", options),
                    Catch::Contains("bad slice '@[a:b]': expected @[start:end]"));
  CHECK_THROWS_WITH(PromptDataset::load(rows + "@[1:2:3]", options), Catch::Contains("bad slice '@[1:2:3]'"));
  CHECK_THROWS_WITH(PromptDataset::load(rows + "@[-:]", options), Catch::Contains("bad slice '@[-:]'"));
  CHECK_THROWS_WITH(PromptDataset::load(rows + "@[7:3]", options),
                    Catch::Contains("the slice selects none of the 10 rows"));

  const std::string wrong_extension = write_lines("rows.json", {prompt_row("a")});
  CHECK_THROWS_WITH(PromptDataset::load(wrong_extension, options),
                    Catch::Contains("unsupported file format, expected a .jsonl file"));
  const std::string parquet = write_lines("rows.parquet", {""});
  CHECK_THROWS_WITH(PromptDataset::load(parquet, options), Catch::Contains("parquet is not supported"));

  PromptDatasetOptions needs_template = options;
  needs_template.apply_chat_template = true;
  CHECK_THROWS_WITH(PromptDataset::load(rows, needs_template), Catch::Contains("needs the tokenizer's chat template"));
  PromptDatasetOptions needs_tokenizer = options;
  needs_tokenizer.max_prompt_len = 5;
  CHECK_THROWS_WITH(PromptDataset::load(rows, needs_tokenizer), Catch::Contains("needs a tokenizer"));

  PromptDatasetOptions tiny = options;
  tiny.tokenizer = &qwen3_tokenizer();
  tiny.max_prompt_len = 1;
  const std::string long_rows = write_lines("all_long.jsonl", {prompt_row("many words here"), prompt_row("and here")});
  CHECK_THROWS_WITH(PromptDataset::load(long_rows, tiny),
                    Catch::Contains("all 2 prompts are longer than --rollout-max-prompt-len=1 tokens"));

  // A template that fails on a row names the row.
  PromptDatasetOptions templated = options;
  const auto failing = slime::tokenizer::ChatTemplate::from_string("{{ messages[0].missing.deeper }}");
  templated.apply_chat_template = true;
  templated.chat_template = &failing;
  CHECK_THROWS_WITH(PromptDataset::load(rows, templated),
                    Catch::Contains(rows + ":1: applying the chat template"));
}

TEST_CASE("the example dataset in inputs/datasets loads with slime's options", "[dataset][chat_template]") {
  const char* root = std::getenv("SLIME_SOURCE_DIR");
  REQUIRE(root != nullptr);
  PromptDatasetOptions options;
  options.input_key = "prompt";
  options.label_key = "label";
  options.apply_chat_template = true;
  options.chat_template = &qwen3_chat_template();
  options.tokenizer = &qwen3_tokenizer();
  options.max_prompt_len = 64;
  const PromptDataset dataset =
      PromptDataset::load(std::string(root) + "/inputs/datasets/arithmetic-64.jsonl", options);
  REQUIRE(dataset.size() == 64);
  CHECK(dataset.dropped_long_prompts() == 0);
  for (const auto& sample : dataset.samples()) {
    CHECK(sample.metadata["rm_type"] == "math");
    CHECK(sample.label.is_string());
    CHECK_THAT(sample.prompt.get<std::string>(), Catch::StartsWith("<|im_start|>user\nWhat is "));
  }
  // The first row, rendered and checked by hand.
  CHECK(dataset[0].prompt ==
        "<|im_start|>user\nWhat is 62 + 25? Put the final answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n");
  CHECK(dataset[0].label == "87");
}

// PromptDataset: JSONL rows -> prompt Samples (slime's read_file, _build_messages, Dataset and
// filter_long_prompt, text only).
#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include "core/error.h"
#include "core/io.h"
#include "core/log.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace slime::data {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); });
}

struct Row {
  int64_t line = 0;  // 1-based
  std::string text;
};

// The non-blank lines of the file, each with its line number.
std::vector<Row> read_rows(const std::string& path) {
  const std::string contents = read_text_file(path);
  std::vector<Row> rows;
  int64_t line_number = 0;
  size_t begin = 0;
  while (begin <= contents.size()) {
    size_t end = contents.find('\n', begin);
    if (end == std::string::npos) end = contents.size();
    ++line_number;
    std::string line = contents.substr(begin, end - begin);
    if (!is_blank(line)) rows.push_back({line_number, std::move(line)});
    begin = end + 1;
  }
  return rows;
}

// The prompt as slime's _build_messages leaves it: a string stays a string unless the chat template is applied,
// then it becomes one user message; a message list stays a list.
ordered_json build_prompt(const ordered_json& row, const std::string& where, const PromptDatasetOptions& options) {
  const std::string& key = options.input_key;
  SLIME_CHECK(row.contains(key), where, ": field '", key, "' (--input-key) is missing");
  const ordered_json& prompt = row[key];
  if (prompt.is_string()) {
    if (!options.apply_chat_template) return prompt;
    ordered_json message = ordered_json::object();
    message["role"] = "user";
    message["content"] = prompt;
    return ordered_json::array({message});
  }
  SLIME_CHECK(prompt.is_array(), where, ": field '", key, "': expected a string or a list of messages, got ",
              json_type_name(prompt));
  for (size_t i = 0; i < prompt.size(); ++i)
    SLIME_CHECK(prompt[i].is_object(), where, ": field '", key, "' message ", i, ": expected an object, got ",
                json_type_name(prompt[i]));
  return prompt;
}

// Tools from --tool-key: a list, or a string holding a JSON list (slime json.loads it). Null when absent.
ordered_json read_tools(const ordered_json& row, const std::string& where, const std::string& key) {
  if (key.empty() || !row.contains(key)) return nullptr;
  ordered_json tools = row[key];
  if (tools.is_string()) {
    try {
      tools = ordered_json::parse(tools.get<std::string>());
    } catch (const ordered_json::parse_error& e) {
      SLIME_FAIL(where, ": field '", key, "' (--tool-key): the string is not valid JSON: ", e.what());
    }
  }
  SLIME_CHECK(tools.is_array(), where, ": field '", key, "' (--tool-key): expected a list of tools, got ",
              json_type_name(tools));
  return tools;
}

Sample sample_from_row(const ordered_json& row, const std::string& where, const PromptDatasetOptions& options) {
  SLIME_CHECK(row.is_object(), where, ": expected a JSON object, got ", json_type_name(row));
  Sample sample;
  const ordered_json prompt = build_prompt(row, where, options);

  if (row.contains(options.metadata_key) && !row[options.metadata_key].is_null()) {
    const ordered_json& metadata = row[options.metadata_key];
    SLIME_CHECK(metadata.is_object(), where, ": field '", options.metadata_key,
                "' (--metadata-key): expected an object, got ", json_type_name(metadata));
    sample.metadata = metadata;
  }
  sample.tools = read_tools(row, where, options.tool_key);
  if (!sample.tools.is_null()) sample.metadata["tools"] = sample.tools;  // slime passes tools on in metadata

  if (options.label_key) {
    SLIME_CHECK(row.contains(*options.label_key), where, ": field '", *options.label_key,
                "' (--label-key) is missing");
    sample.label = row[*options.label_key];
  }

  if (options.apply_chat_template) {
    try {
      sample.prompt = options.chat_template->apply(prompt, /*add_generation_prompt=*/true, sample.tools,
                                                   options.apply_chat_template_kwargs);
    } catch (const std::exception& e) {
      SLIME_FAIL(where, ": applying the chat template: ", e.what());
    }
  } else {
    sample.prompt = prompt;
  }
  if (options.tokenizer != nullptr && sample.prompt.is_string())
    sample.tokens = options.tokenizer->encode(sample.prompt.get<std::string>(), /*add_special_tokens=*/false);
  return sample;
}

}  // namespace

SlicedPath parse_sliced_path(const std::string& spec) {
  SlicedPath out;
  out.path = spec;
  // A trailing @[...] is a slice; its inside must be [start:end] with optional signed integers.
  static const std::regex suffix(R"(^(.*)@\[([^\]]*)\]$)");
  static const std::regex bounds(R"(^(-?\d*):(-?\d*)$)");
  std::smatch whole;
  if (!std::regex_match(spec, whole, suffix)) return out;
  const std::string inside = whole[2].str();
  std::smatch parts;
  const bool ok = std::regex_match(inside, parts, bounds) && parts[1].str() != "-" && parts[2].str() != "-";
  SLIME_CHECK(ok, "prompt dataset '", spec, "': bad slice '@[", inside,
              "]': expected @[start:end] with optional integer bounds, e.g. @[0:100] or @[-50:]");
  out.path = whole[1].str();
  out.has_slice = true;
  auto parse_bound = [&](const std::string& text) -> std::optional<int64_t> {
    if (text.empty()) return std::nullopt;
    try {
      return std::stoll(text);
    } catch (const std::out_of_range&) {
      SLIME_FAIL("prompt dataset '", spec, "': slice bound ", text, " is out of range");
    }
  };
  out.start = parse_bound(parts[1].str());
  out.end = parse_bound(parts[2].str());
  return out;
}

std::pair<int64_t, int64_t> resolve_slice(const SlicedPath& sliced, int64_t rows) {
  auto resolve = [rows](std::optional<int64_t> bound, int64_t open) {
    if (!bound) return open;
    int64_t value = *bound < 0 ? *bound + rows : *bound;
    return std::clamp<int64_t>(value, 0, rows);
  };
  const int64_t first = resolve(sliced.start, 0);
  const int64_t last = resolve(sliced.end, rows);
  return {first, std::max(first, last)};
}

PromptDataset PromptDataset::load(const std::string& spec, const PromptDatasetOptions& options) {
  const SlicedPath sliced = parse_sliced_path(spec);
  const std::string& path = sliced.path;
  SLIME_CHECK(path_exists(path), "prompt dataset '", path, "' does not exist");
  SLIME_CHECK(!ends_with(path, ".parquet"), "prompt dataset '", path,
              "': parquet is not supported, convert it to JSONL (one JSON object a line)");
  SLIME_CHECK(ends_with(path, ".jsonl"), "prompt dataset '", path,
              "': unsupported file format, expected a .jsonl file");
  SLIME_CHECK(options.apply_chat_template_kwargs.is_object(), "--apply-chat-template-kwargs: expected a JSON ",
              "object, got ", json_type_name(options.apply_chat_template_kwargs));
  SLIME_CHECK(!options.apply_chat_template || options.chat_template != nullptr, "prompt dataset '", path,
              "': --apply-chat-template needs the tokenizer's chat template, none was given");
  SLIME_CHECK(!options.max_prompt_len || options.tokenizer != nullptr, "prompt dataset '", path,
              "': --rollout-max-prompt-len needs a tokenizer to count prompt tokens, none was given");

  const std::vector<Row> rows = read_rows(path);
  SLIME_CHECK(!rows.empty(), "prompt dataset '", path, "' has no prompts: every line is blank");
  const auto [first, last] = resolve_slice(sliced, static_cast<int64_t>(rows.size()));
  SLIME_CHECK(first < last, "prompt dataset '", spec, "': the slice selects none of the ", rows.size(), " rows");

  PromptDataset dataset;
  dataset.source_ = spec;
  std::vector<Sample> samples;
  std::vector<int64_t> lines;
  for (int64_t r = first; r < last; ++r) {
    const Row& row = rows[static_cast<size_t>(r)];
    const std::string where = cat(path, ":", row.line);
    ordered_json document;
    try {
      document = ordered_json::parse(row.text);
    } catch (const ordered_json::parse_error& e) {
      SLIME_FAIL(where, ": malformed JSON: ", e.what());
    }
    samples.push_back(sample_from_row(document, where, options));
    lines.push_back(row.line);
  }
  dataset.rows_read_ = static_cast<int64_t>(samples.size());

  // slime's filter_long_prompt: measured only when the prompts are text (the first one decides); a message list
  // (no chat template) cannot be measured and is kept.
  const bool measurable = samples.front().prompt.is_string();
  if (options.max_prompt_len && !measurable)
    SLIME_WARN("prompt dataset '", spec, "': prompts are message lists, --rollout-max-prompt-len is not applied; ",
               "set --apply-chat-template to filter by length");
  for (size_t i = 0; i < samples.size(); ++i) {
    const bool too_long = options.max_prompt_len && measurable && samples[i].prompt.is_string() &&
                          static_cast<int64_t>(samples[i].tokens.size()) > *options.max_prompt_len;
    if (too_long) {
      ++dataset.dropped_long_prompts_;
      continue;
    }
    dataset.samples_.push_back(std::move(samples[i]));
    dataset.source_lines_.push_back(lines[i]);
  }
  if (options.max_prompt_len && measurable)
    SLIME_INFO0("prompt dataset '", spec, "': filtered ", dataset.dropped_long_prompts_,
                " prompts longer than --rollout-max-prompt-len=", *options.max_prompt_len, " tokens");
  SLIME_CHECK(!dataset.samples_.empty(), "prompt dataset '", spec, "': all ", dataset.rows_read_,
              " prompts are longer than --rollout-max-prompt-len=", options.max_prompt_len.value_or(0), " tokens");
  return dataset;
}

PromptDataset PromptDataset::from_samples(std::vector<Sample> samples, const std::string& source) {
  PromptDataset dataset;
  dataset.source_ = source;
  dataset.rows_read_ = static_cast<int64_t>(samples.size());
  dataset.source_lines_.assign(samples.size(), 0);
  dataset.samples_ = std::move(samples);
  return dataset;
}

}  // namespace slime::data

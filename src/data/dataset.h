// Prompt datasets read from JSONL (slime's slime/utils/data.py::Dataset): one JSON object a line, blank lines
// skipped, an optional `path@[start:end]` row slice (Python slice bounds, negative ones count from the end),
// the prompt/label/metadata/tools fields chosen by --input-key/--label-key/--metadata-key/--tool-key, the chat
// template applied when asked, every prompt tokenised once, and prompts longer than --rollout-max-prompt-len
// dropped (order kept).
//
// Differences from slime, all on bad input: a malformed JSON line is an error naming file:line (slime prints it
// and skips the line); a dataset with no prompt left is an error; a `@[...]` suffix that is not `[start:end]`
// with integer bounds is an error rather than part of the file name. Rows outside the slice are not parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/sample.h"

namespace slime::tokenizer {
class Tokenizer;
class ChatTemplate;
}  // namespace slime::tokenizer

namespace slime::data {

struct PromptDatasetOptions {
  std::string input_key = "input";               // --input-key
  std::optional<std::string> label_key;          // --label-key; unset = no label
  std::string metadata_key = "metadata";         // --metadata-key
  std::string tool_key = "tools";                // --tool-key; empty = never read tools
  bool apply_chat_template = false;              // --apply-chat-template
  ordered_json apply_chat_template_kwargs = ordered_json::object();  // --apply-chat-template-kwargs
  std::optional<int64_t> max_prompt_len;         // --rollout-max-prompt-len; unset = keep every prompt

  // Used during load only. tokenizer: null = prompts are not tokenised (then max_prompt_len must be unset).
  // chat_template: required with apply_chat_template.
  const tokenizer::Tokenizer* tokenizer = nullptr;
  const tokenizer::ChatTemplate* chat_template = nullptr;
};

// A `path@[start:end]` split (slime's _parse_generalized_path). Bounds as Python slice bounds: unset = open.
struct SlicedPath {
  std::string path;
  bool has_slice = false;
  std::optional<int64_t> start, end;
};
SlicedPath parse_sliced_path(const std::string& spec);
// Row indices [first, last) that the slice selects among `rows` rows (Python's slice.indices, step 1).
std::pair<int64_t, int64_t> resolve_slice(const SlicedPath& sliced, int64_t rows);

class PromptDataset {
 public:
  // `spec` is a .jsonl path, optionally followed by @[start:end]. Errors name the file, the line and the field.
  static PromptDataset load(const std::string& spec, const PromptDatasetOptions& options);

  // Builds a dataset from prepared samples (custom data sources, tests); `source` names it in messages.
  static PromptDataset from_samples(std::vector<Sample> samples, const std::string& source);

  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  const Sample& operator[](int64_t i) const { return samples_.at(static_cast<size_t>(i)); }
  const std::vector<Sample>& samples() const { return samples_; }
  // 1-based line in the file of each kept prompt (0 for from_samples).
  const std::vector<int64_t>& source_lines() const { return source_lines_; }
  int64_t rows_read() const { return rows_read_; }                    // rows selected by the slice
  int64_t dropped_long_prompts() const { return dropped_long_prompts_; }  // rows removed by max_prompt_len
  const std::string& source() const { return source_; }

 private:
  std::vector<Sample> samples_;
  std::vector<int64_t> source_lines_;
  int64_t rows_read_ = 0;
  int64_t dropped_long_prompts_ = 0;
  std::string source_;
};

}  // namespace slime::data

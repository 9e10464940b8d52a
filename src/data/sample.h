// One rollout sample: a prompt, the response generated for it, and what training needs about that response
// (slime's `Sample` dataclass, slime/utils/types.py, restricted to the fields this system uses).
//
// JSON documents (prompt, label, metadata, tools, reward details) are nlohmann::ordered_json so that their keys
// stay in file order: chat templates print tools and arguments with `tojson`, which must match Python.
// Keys of a serialized sample that this struct does not know (slime's spec_info, multimodal_inputs,
// train_metadata, ...) are kept in `extra` and written back by to_json, as slime's from_dict keeps unknown keys as
// attributes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace slime::data {

using ordered_json = nlohmann::ordered_json;

enum class SampleStatus { Pending, Completed, Truncated, Aborted, Failed };

// "pending", "completed", "truncated", "aborted", "failed" (slime's Status values).
const char* status_name(SampleStatus status);
// Inverse of status_name; an unknown name is an error that lists the valid ones. `where` names the document.
SampleStatus parse_status(const std::string& name, const std::string& where);

// Prefix-cache statistics summed over the engine calls of a sample (slime's PrefixCacheInfo).
struct PrefixCacheInfo {
  int64_t cached_tokens = 0;
  int64_t total_prompt_tokens = 0;
  double hit_rate() const {
    return total_prompt_tokens > 0 ? static_cast<double>(cached_tokens) / total_prompt_tokens : 0.0;
  }
};

// What an engine call reports at the end of a turn besides tokens and log-probs (slime's meta_info subset).
struct TurnInfo {
  // "stop" -> Completed, "length" -> Truncated, "abort" -> Aborted; any other value leaves the status as it is;
  // empty = the turn is not finished, nothing below is applied (slime applies terminal info only with a
  // finish_reason).
  std::string finish_reason;
  std::string weight_version;     // appended to weight_versions when not empty
  int64_t prompt_tokens = 0;      // added to prefix_cache_info.total_prompt_tokens
  int64_t cached_tokens = 0;      // added to prefix_cache_info.cached_tokens
};

struct Sample {
  // -1 means unset (slime's None).
  int64_t group_index = -1;  // prompt-group counter
  int64_t index = -1;        // global sample counter
  int64_t rollout_id = -1;   // shared by the samples one rollout execution fans out to; -1 = use `index`

  ordered_json prompt = "";                          // a string, or an OpenAI message list
  ordered_json label = nullptr;                      // reference answer (any JSON value), null when none
  ordered_json metadata = ordered_json::object();    // dataset metadata (rm_type, source_name, tools, ...)
  ordered_json tools = nullptr;                      // tool definitions (a list) or null

  std::vector<int32_t> tokens;           // [prompt_length + response_length] prompt then response ids
  int64_t response_length = 0;           // the last response_length tokens are the response
  std::string response;                  // response text
  std::vector<int32_t> loss_mask;        // [response_length] 1 = trained on; empty = all ones (slime's None)
  std::vector<float> rollout_logprobs;   // [response_length] engine log-probs; empty = none (slime's None)

  double reward = 0.0;                   // scalar reward used by training
  ordered_json reward_details = nullptr; // the reward function's raw result when it is more than a number
  bool remove_sample = false;            // excluded from the loss

  SampleStatus status = SampleStatus::Pending;
  std::vector<std::string> weight_versions;  // weight versions that produced the response tokens
  std::string session_id;                    // router affinity key; empty = none
  PrefixCacheInfo prefix_cache_info;

  ordered_json extra = ordered_json::object();  // keys of a serialized sample this struct does not know

  int64_t prompt_length() const { return static_cast<int64_t>(tokens.size()) - response_length; }
  // Tokens that count in the loss: sum of loss_mask, or response_length when there is no mask.
  int64_t effective_response_length() const;

  // Appends response tokens and keeps loss_mask and rollout_logprobs aligned with them (slime's
  // append_response_tokens). Model tokens: trainable=true with one log-prob each. Tool or environment tokens:
  // trainable=false and no log-probs; they get mask 0 and log-prob 0. A first trainable append onto a response
  // that has tokens but no log-probs is an error, as in slime. `text` is appended to `response`. Then, when
  // turn.finish_reason is set, applies the terminal info (status, weight version, prefix-cache counts).
  void append_response_tokens(const std::vector<int32_t>& new_tokens, const std::vector<float>& logprobs,
                              bool trainable, const TurnInfo& turn = {}, const std::string& text = "");
  // Shorthand: only a finish reason.
  void append_response_tokens(const std::vector<int32_t>& new_tokens, const std::vector<float>& logprobs,
                              bool trainable, const std::string& finish_reason);

  // Checks loss_mask / rollout_logprobs / tokens against response_length; `where` names the sample in errors.
  void check_consistent(const std::string& where) const;

  ordered_json to_json() const;
  // Inverse of to_json; also accepts a slime to_dict document (a dict reward goes to reward_details). Errors
  // name `where` and the field, with the expected and found types.
  static Sample from_json(const ordered_json& document, const std::string& where = "sample");
};

}  // namespace slime::data

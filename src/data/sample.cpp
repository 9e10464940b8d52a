// Sample: response appends that keep the per-token arrays aligned, and the JSON form (slime's to_dict/from_dict
// keys, so documents move between the two systems).
#include "data/sample.h"

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/io.h"

namespace slime::data {

namespace {

constexpr const char* kStatusNames[] = {"pending", "completed", "truncated", "aborted", "failed"};

// The keys to_json writes; from_json moves every other key to `extra`.
const char* const kKnownKeys[] = {"group_index", "index", "rollout_id", "prompt", "label", "metadata", "tools",
                                  "tokens", "response_length", "response", "loss_mask", "rollout_log_probs",
                                  "reward", "reward_details", "remove_sample", "status", "weight_versions",
                                  "session_id", "prefix_cache_info"};

bool is_known_key(const std::string& key) {
  for (const char* known : kKnownKeys)
    if (key == known) return true;
  return false;
}

std::string field_error(const std::string& where, const std::string& key, const char* expected,
                        const ordered_json& found) {
  return cat(where, ": field '", key, "': expected ", expected, ", got ", json_type_name(found));
}

// An integer field that may be null (slime's None) -> -1.
int64_t optional_int(const ordered_json& doc, const std::string& key, const std::string& where) {
  if (!doc.contains(key) || doc[key].is_null()) return -1;
  const ordered_json& value = doc[key];
  SLIME_CHECK(value.is_number_integer(), field_error(where, key, "an integer or null", value));
  return value.get<int64_t>();
}

template <class T>
std::vector<T> number_list(const ordered_json& doc, const std::string& key, const std::string& where,
                           bool integers) {
  std::vector<T> out;
  if (!doc.contains(key) || doc[key].is_null()) return out;
  const ordered_json& value = doc[key];
  const char* expected = integers ? "a list of integers or null" : "a list of numbers or null";
  SLIME_CHECK(value.is_array(), field_error(where, key, expected, value));
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const ordered_json& item = value[i];
    const bool ok = integers ? item.is_number_integer() : item.is_number();
    SLIME_CHECK(ok, where, ": field '", key, "' item ", i, ": expected ", integers ? "an integer" : "a number",
                ", got ", json_type_name(item));
    out.push_back(item.get<T>());
  }
  return out;
}

}  // namespace

const char* status_name(SampleStatus status) { return kStatusNames[static_cast<int>(status)]; }

SampleStatus parse_status(const std::string& name, const std::string& where) {
  for (int i = 0; i < 5; ++i)
    if (name == kStatusNames[i]) return static_cast<SampleStatus>(i);
  SLIME_FAIL(where, ": field 'status': expected one of pending, completed, truncated, aborted, failed, got '", name,
             "'");
}

int64_t Sample::effective_response_length() const {
  if (loss_mask.empty()) return response_length;
  return std::accumulate(loss_mask.begin(), loss_mask.end(), int64_t{0});
}

void Sample::append_response_tokens(const std::vector<int32_t>& new_tokens, const std::vector<float>& logprobs,
                                    bool trainable, const std::string& finish_reason) {
  TurnInfo turn;
  turn.finish_reason = finish_reason;
  append_response_tokens(new_tokens, logprobs, trainable, turn);
}

void Sample::append_response_tokens(const std::vector<int32_t>& new_tokens, const std::vector<float>& logprobs,
                                    bool trainable, const TurnInfo& turn, const std::string& text) {
  const size_t count = new_tokens.size();
  if (trainable) {
    SLIME_CHECK(logprobs.size() == count, "append_response_tokens: ", count, " trainable tokens need as many ",
                "rollout log-probs, got ", logprobs.size());
  } else {
    SLIME_CHECK(logprobs.empty(), "append_response_tokens: non-trainable tokens take no rollout log-probs, got ",
                logprobs.size());
  }
  const int64_t previous_length = response_length;
  if (count > 0 && trainable && rollout_logprobs.empty() && previous_length > 0)
    SLIME_FAIL("append_response_tokens: cannot append trainable rollout log-probs to a sample with ", previous_length,
               " response tokens but no rollout log-probs");
  check_consistent("append_response_tokens");

  response += text;
  if (count > 0) {
    tokens.insert(tokens.end(), new_tokens.begin(), new_tokens.end());
    response_length += static_cast<int64_t>(count);
    // The mask is materialised (slime's None -> [1] * previous length) as soon as there are response tokens.
    if (loss_mask.empty()) loss_mask.assign(previous_length, 1);
    loss_mask.insert(loss_mask.end(), count, trainable ? 1 : 0);
    if (rollout_logprobs.empty()) rollout_logprobs.assign(previous_length, 0.0f);
    if (trainable)
      rollout_logprobs.insert(rollout_logprobs.end(), logprobs.begin(), logprobs.end());
    else
      rollout_logprobs.insert(rollout_logprobs.end(), count, 0.0f);
  }

  if (!turn.finish_reason.empty()) {
    prefix_cache_info.cached_tokens += turn.cached_tokens;
    prefix_cache_info.total_prompt_tokens += turn.prompt_tokens;
    if (!turn.weight_version.empty()) weight_versions.push_back(turn.weight_version);
    if (turn.finish_reason == "length")
      status = SampleStatus::Truncated;
    else if (turn.finish_reason == "abort")
      status = SampleStatus::Aborted;
    else if (turn.finish_reason == "stop")
      status = SampleStatus::Completed;
  }
  check_consistent("append_response_tokens");
}

void Sample::check_consistent(const std::string& where) const {
  SLIME_CHECK(response_length >= 0 && response_length <= static_cast<int64_t>(tokens.size()), where,
              ": response_length ", response_length, " does not fit in ", tokens.size(), " tokens");
  SLIME_CHECK(loss_mask.empty() || static_cast<int64_t>(loss_mask.size()) == response_length, where,
              ": loss_mask has ", loss_mask.size(), " entries, response_length is ", response_length);
  SLIME_CHECK(rollout_logprobs.empty() || static_cast<int64_t>(rollout_logprobs.size()) == response_length, where,
              ": rollout_log_probs has ", rollout_logprobs.size(), " entries, response_length is ", response_length);
}

ordered_json Sample::to_json() const {
  auto optional_int_json = [](int64_t value) { return value < 0 ? ordered_json(nullptr) : ordered_json(value); };
  ordered_json doc = ordered_json::object();
  doc["group_index"] = optional_int_json(group_index);
  doc["index"] = optional_int_json(index);
  doc["rollout_id"] = optional_int_json(rollout_id);
  doc["prompt"] = prompt;
  doc["label"] = label;
  doc["metadata"] = metadata;
  doc["tools"] = tools;
  doc["tokens"] = tokens;
  doc["response_length"] = response_length;
  doc["response"] = response;
  doc["loss_mask"] = loss_mask.empty() ? ordered_json(nullptr) : ordered_json(loss_mask);
  // float -> double is exact and the JSON writer prints the shortest text that parses back to the same double,
  // so log-probs come back bit for bit.
  ordered_json logprobs = ordered_json::array();
  for (float value : rollout_logprobs) logprobs.push_back(static_cast<double>(value));
  doc["rollout_log_probs"] = rollout_logprobs.empty() ? ordered_json(nullptr) : logprobs;
  SLIME_CHECK(std::isfinite(reward), "sample ", index, ": reward ", reward, " is not finite");
  doc["reward"] = reward;
  doc["reward_details"] = reward_details;
  doc["remove_sample"] = remove_sample;
  doc["status"] = status_name(status);
  doc["weight_versions"] = weight_versions;
  doc["session_id"] = session_id.empty() ? ordered_json(nullptr) : ordered_json(session_id);
  doc["prefix_cache_info"] = {{"cached_tokens", prefix_cache_info.cached_tokens},
                              {"total_prompt_tokens", prefix_cache_info.total_prompt_tokens}};
  for (const auto& [key, value] : extra.items()) {
    SLIME_ASSERT(!is_known_key(key), "Sample::extra holds the known key '", key, "'");
    doc[key] = value;
  }
  return doc;
}

Sample Sample::from_json(const ordered_json& doc, const std::string& where) {
  SLIME_CHECK(doc.is_object(), where, ": expected a sample object, got ", json_type_name(doc));
  Sample s;
  s.group_index = optional_int(doc, "group_index", where);
  s.index = optional_int(doc, "index", where);
  s.rollout_id = optional_int(doc, "rollout_id", where);

  if (doc.contains("prompt")) {
    const ordered_json& prompt = doc["prompt"];
    SLIME_CHECK(prompt.is_string() || prompt.is_array(), field_error(where, "prompt", "a string or a list", prompt));
    s.prompt = prompt;
  }
  if (doc.contains("label")) s.label = doc["label"];
  if (doc.contains("metadata") && !doc["metadata"].is_null()) {
    SLIME_CHECK(doc["metadata"].is_object(), field_error(where, "metadata", "an object", doc["metadata"]));
    s.metadata = doc["metadata"];
  }
  if (doc.contains("tools")) {
    SLIME_CHECK(doc["tools"].is_null() || doc["tools"].is_array(),
                field_error(where, "tools", "a list or null", doc["tools"]));
    s.tools = doc["tools"];
  }

  s.tokens = number_list<int32_t>(doc, "tokens", where, true);
  if (doc.contains("response_length")) {
    SLIME_CHECK(doc["response_length"].is_number_integer(),
                field_error(where, "response_length", "an integer", doc["response_length"]));
    s.response_length = doc["response_length"].get<int64_t>();
  }
  if (doc.contains("response")) {
    SLIME_CHECK(doc["response"].is_string(), field_error(where, "response", "a string", doc["response"]));
    s.response = doc["response"].get<std::string>();
  }
  s.loss_mask = number_list<int32_t>(doc, "loss_mask", where, true);
  const std::vector<double> logprobs = number_list<double>(doc, "rollout_log_probs", where, false);
  s.rollout_logprobs.assign(logprobs.begin(), logprobs.end());

  if (doc.contains("reward")) {
    const ordered_json& reward = doc["reward"];
    if (reward.is_number()) {
      s.reward = reward.get<double>();
    } else if (reward.is_object()) {
      s.reward_details = reward;  // slime's dict reward; the scalar is chosen later (--reward-key)
    } else {
      SLIME_CHECK(reward.is_null(), field_error(where, "reward", "a number, an object or null", reward));
    }
  }
  if (doc.contains("reward_details") && !doc["reward_details"].is_null()) s.reward_details = doc["reward_details"];
  if (doc.contains("remove_sample")) {
    SLIME_CHECK(doc["remove_sample"].is_boolean(),
                field_error(where, "remove_sample", "a boolean", doc["remove_sample"]));
    s.remove_sample = doc["remove_sample"].get<bool>();
  }
  if (doc.contains("status")) {
    SLIME_CHECK(doc["status"].is_string(), field_error(where, "status", "a string", doc["status"]));
    s.status = parse_status(doc["status"].get<std::string>(), where);
  }
  if (doc.contains("weight_versions")) {
    const ordered_json& versions = doc["weight_versions"];
    SLIME_CHECK(versions.is_array(), field_error(where, "weight_versions", "a list of strings", versions));
    for (const ordered_json& version : versions) {
      SLIME_CHECK(version.is_string(), field_error(where, "weight_versions", "a list of strings", version));
      s.weight_versions.push_back(version.get<std::string>());
    }
  }
  if (doc.contains("session_id") && !doc["session_id"].is_null()) {
    SLIME_CHECK(doc["session_id"].is_string(), field_error(where, "session_id", "a string or null", doc["session_id"]));
    s.session_id = doc["session_id"].get<std::string>();
  }
  if (doc.contains("prefix_cache_info")) {
    const ordered_json& info = doc["prefix_cache_info"];
    SLIME_CHECK(info.is_object(), field_error(where, "prefix_cache_info", "an object", info));
    for (const char* key : {"cached_tokens", "total_prompt_tokens"}) {
      if (!info.contains(key)) continue;
      SLIME_CHECK(info[key].is_number_integer(), field_error(where, cat("prefix_cache_info.", key), "an integer",
                                                             info[key]));
    }
    s.prefix_cache_info.cached_tokens = info.value("cached_tokens", int64_t{0});
    s.prefix_cache_info.total_prompt_tokens = info.value("total_prompt_tokens", int64_t{0});
  }

  for (const auto& [key, value] : doc.items())
    if (!is_known_key(key)) s.extra[key] = value;
  s.check_consistent(where);
  return s;
}

}  // namespace slime::data

// Sample tests: a port of slime's tests/test_sample.py (JSON round trip, unknown keys, finish_reason -> status,
// weight versions, prefix-cache counts) plus response appends keeping loss_mask / log-probs aligned.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "data/sample.h"

using slime::data::ordered_json;
using slime::data::Sample;
using slime::data::SampleStatus;
using slime::data::TurnInfo;

namespace {

// One non-default value per field (slime's _make_sample; its per-token lists were made consistent with
// response_length, which from_json checks and slime does not).
Sample make_sample() {
  Sample s;
  s.group_index = 0;
  s.index = 42;
  s.rollout_id = 7;
  s.prompt = "hello";
  s.tokens = {1, 2, 3, 4, 5, 6, 7, 8};
  s.response = "world";
  s.response_length = 5;
  s.label = "42";
  s.reward = 0.75;
  s.reward_details = ordered_json::parse(R"({"score": 0.75, "format": 1})");
  s.loss_mask = {1, 1, 0, 1, 1};
  s.weight_versions = {"v1"};
  s.rollout_logprobs = {-0.1f, -0.2f, 0.0f, -1e-30f, -12.345678f};
  s.remove_sample = false;
  s.status = SampleStatus::Completed;
  s.metadata = ordered_json::parse(R"({"rm_type": "math", "source_name": "gsm8k"})");
  s.tools = ordered_json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  s.session_id = "uuid-1234";
  return s;
}

// Field by field, so a field dropped by both to_json and from_json cannot hide behind an equal JSON text.
void require_same(const Sample& a, const Sample& b) {
  CHECK(a.group_index == b.group_index);
  CHECK(a.index == b.index);
  CHECK(a.rollout_id == b.rollout_id);
  CHECK(a.prompt == b.prompt);
  CHECK(a.label == b.label);
  CHECK(a.metadata == b.metadata);
  CHECK(a.metadata.dump() == b.metadata.dump());  // key order too
  CHECK(a.tools == b.tools);
  CHECK(a.tokens == b.tokens);
  CHECK(a.response_length == b.response_length);
  CHECK(a.response == b.response);
  CHECK(a.loss_mask == b.loss_mask);
  CHECK(a.rollout_logprobs == b.rollout_logprobs);  // bit for bit
  CHECK(a.reward == b.reward);
  CHECK(a.reward_details == b.reward_details);
  CHECK(a.remove_sample == b.remove_sample);
  CHECK(a.status == b.status);
  CHECK(a.weight_versions == b.weight_versions);
  CHECK(a.session_id == b.session_id);
  CHECK(a.prefix_cache_info.cached_tokens == b.prefix_cache_info.cached_tokens);
  CHECK(a.prefix_cache_info.total_prompt_tokens == b.prefix_cache_info.total_prompt_tokens);
  CHECK(a.extra == b.extra);
}

TurnInfo finished(const std::string& reason) {
  TurnInfo turn;
  turn.finish_reason = reason;
  return turn;
}

}  // namespace

TEST_CASE("to_json writes the status as its string value", "[sample]") {
  const ordered_json doc = make_sample().to_json();
  CHECK(doc["status"] == "completed");
  CHECK(doc["status"].is_string());
}

TEST_CASE("to_json flattens prefix_cache_info", "[sample]") {
  Sample s = make_sample();
  s.prefix_cache_info.cached_tokens = 5;
  s.prefix_cache_info.total_prompt_tokens = 50;
  CHECK(s.to_json()["prefix_cache_info"] == ordered_json::parse(R"({"cached_tokens": 5, "total_prompt_tokens": 50})"));
  CHECK(s.prefix_cache_info.hit_rate() == 0.1);
}

TEST_CASE("to_json / from_json round trip preserves every field", "[sample]") {
  Sample original = make_sample();
  original.prefix_cache_info.cached_tokens = 7;
  const Sample restored = Sample::from_json(original.to_json());
  CHECK(restored.status == SampleStatus::Completed);
  CHECK(restored.prefix_cache_info.cached_tokens == 7);
  require_same(original, restored);

  // Through text, as a checkpoint stores it.
  const Sample reparsed = Sample::from_json(ordered_json::parse(original.to_json().dump()));
  require_same(original, reparsed);
  CHECK(reparsed.to_json().dump() == original.to_json().dump());
}

TEST_CASE("from_json keeps unknown keys and writes them back", "[sample]") {
  ordered_json doc = make_sample().to_json();
  doc["future_extension"] = "carried through";
  doc["spec_info"] = ordered_json::parse(R"({"spec_accept_token_num": 3, "spec_draft_token_num": 4})");
  const Sample restored = Sample::from_json(doc);
  CHECK(restored.extra["future_extension"] == "carried through");
  CHECK(restored.extra["spec_info"]["spec_accept_token_num"] == 3);
  CHECK(restored.to_json() == doc);
}

TEST_CASE("a default Sample round-trips", "[sample]") {
  const Sample restored = Sample::from_json(Sample().to_json());
  CHECK(restored.status == SampleStatus::Pending);
  CHECK(restored.tokens.empty());
  CHECK(restored.metadata == ordered_json::object());
  CHECK(restored.group_index == -1);
  CHECK(restored.to_json()["index"].is_null());
  require_same(Sample(), restored);
}

TEST_CASE("from_json reads slime's to_dict document", "[sample]") {
  // A Sample.to_dict() from slime (Python), with slime-only fields and a dict reward.
  const ordered_json doc = ordered_json::parse(R"({
    "group_index": 3, "index": 12, "rollout_id": null, "prompt": [{"role": "user", "content": "2+2?"}],
    "tokens": [10, 11, 12], "multimodal_inputs": null, "response": "4", "response_length": 1, "label": "4",
    "reward": {"acc": 1.0, "len": 0.5}, "loss_mask": null, "weight_versions": [], "rollout_log_probs": [-0.5],
    "remove_sample": false, "teacher_log_probs": null, "status": "truncated", "metadata": {"rm_type": "math"},
    "generate_function_path": null, "train_metadata": null, "session_id": null, "non_generation_time": 0.0,
    "spec_info": {"spec_accept_token_num": 0}, "prefix_cache_info": {"cached_tokens": 2, "total_prompt_tokens": 2}
  })");
  const Sample s = Sample::from_json(doc);
  CHECK(s.group_index == 3);
  CHECK(s.rollout_id == -1);
  CHECK(s.prompt[0]["content"] == "2+2?");
  CHECK(s.prompt_length() == 2);
  CHECK(s.reward == 0.0);
  CHECK(s.reward_details["acc"] == 1.0);
  CHECK(s.status == SampleStatus::Truncated);
  CHECK(s.rollout_logprobs == std::vector<float>{-0.5f});
  CHECK(s.effective_response_length() == 1);  // no mask: every response token counts
  CHECK(s.extra.contains("teacher_log_probs"));
  CHECK(s.extra.contains("non_generation_time"));
  CHECK_FALSE(s.extra.contains("reward"));
}

TEST_CASE("from_json errors name the field, the expected and the found type", "[sample]") {
  auto with = [](const char* key, ordered_json value) {
    ordered_json doc = Sample().to_json();
    doc[key] = std::move(value);
    return doc;
  };
  CHECK_THROWS_WITH(Sample::from_json(with("tokens", "abc"), "buffer group 2 sample 1"),
                    Catch::Contains("buffer group 2 sample 1: field 'tokens': expected a list of integers or null, "
                                    "got string"));
  CHECK_THROWS_WITH(Sample::from_json(with("tokens", ordered_json::parse("[1, 2.5]"))),
                    Catch::Contains("field 'tokens' item 1: expected an integer, got number"));
  CHECK_THROWS_WITH(Sample::from_json(with("status", "done")),
                    Catch::Contains("field 'status': expected one of pending, completed") &&
                        Catch::Contains("got 'done'"));
  CHECK_THROWS_WITH(Sample::from_json(with("index", "7")), Catch::Contains("field 'index': expected an integer"));
  CHECK_THROWS_WITH(Sample::from_json(with("metadata", 3)), Catch::Contains("field 'metadata': expected an object"));
  CHECK_THROWS_WITH(Sample::from_json(with("prompt", 3)), Catch::Contains("field 'prompt': expected a string or a list"));
  CHECK_THROWS_WITH(Sample::from_json(with("reward", "high")), Catch::Contains("field 'reward'"));
  CHECK_THROWS_WITH(Sample::from_json(ordered_json::array()), Catch::Contains("expected a sample object, got array"));
  ordered_json inconsistent = make_sample().to_json();
  inconsistent["loss_mask"] = {1, 1};
  CHECK_THROWS_WITH(Sample::from_json(inconsistent), Catch::Contains("loss_mask has 2 entries, response_length is 5"));
  inconsistent = make_sample().to_json();
  inconsistent["response_length"] = 9;
  CHECK_THROWS_WITH(Sample::from_json(inconsistent), Catch::Contains("response_length 9 does not fit in 8 tokens"));
}

TEST_CASE("finish_reason maps to the status as slime does", "[sample]") {
  const std::vector<std::pair<std::string, SampleStatus>> cases = {
      {"length", SampleStatus::Truncated}, {"abort", SampleStatus::Aborted}, {"stop", SampleStatus::Completed}};
  for (const auto& [reason, expected] : cases) {
    Sample s;
    s.append_response_tokens({}, {}, true, finished(reason));
    CHECK(s.status == expected);
    Sample t;
    t.append_response_tokens({}, {}, true, reason);  // the shorthand
    CHECK(t.status == expected);
  }
  Sample unknown;
  unknown.append_response_tokens({}, {}, true, finished("something_new"));
  CHECK(unknown.status == SampleStatus::Pending);
  // Without a finish reason the turn is not terminal: nothing changes.
  Sample not_final;
  not_final.status = SampleStatus::Aborted;
  TurnInfo turn;
  turn.weight_version = "v9";
  not_final.append_response_tokens({}, {}, true, turn);
  CHECK(not_final.status == SampleStatus::Aborted);
  CHECK(not_final.weight_versions.empty());
}

TEST_CASE("weight_version is appended when present", "[sample]") {
  Sample s;
  s.weight_versions = {"v1"};
  TurnInfo turn = finished("stop");
  turn.weight_version = "v2";
  s.append_response_tokens({}, {}, true, turn);
  CHECK(s.weight_versions == std::vector<std::string>{"v1", "v2"});
}

TEST_CASE("prefix_cache_info accumulates across calls", "[sample]") {
  Sample s;
  for (auto [prompt_tokens, cached_tokens] : {std::pair<int64_t, int64_t>{100, 0}, {200, 50}}) {
    TurnInfo turn = finished("stop");
    turn.prompt_tokens = prompt_tokens;
    turn.cached_tokens = cached_tokens;
    s.append_response_tokens({}, {}, true, turn);
  }
  CHECK(s.prefix_cache_info.cached_tokens == 50);
  CHECK(s.prefix_cache_info.total_prompt_tokens == 300);
}

TEST_CASE("append_response_tokens keeps loss_mask and log-probs aligned", "[sample]") {
  Sample s;
  s.tokens = {100, 101, 102};  // the prompt
  CHECK(s.prompt_length() == 3);
  CHECK(s.effective_response_length() == 0);

  // Model turn, then a tool response (not trained on), then the model again.
  s.append_response_tokens({7, 8}, {-0.5f, -0.25f}, true, TurnInfo{}, "ab");
  s.append_response_tokens({9, 10, 11}, {}, false, TurnInfo{}, "<tool>");
  TurnInfo last = finished("stop");
  last.weight_version = "3";
  s.append_response_tokens({12}, {-1.0f}, true, last, "c");

  CHECK(s.tokens == std::vector<int32_t>{100, 101, 102, 7, 8, 9, 10, 11, 12});
  CHECK(s.response_length == 6);
  CHECK(s.prompt_length() == 3);
  CHECK(s.response == "ab<tool>c");
  CHECK(s.loss_mask == std::vector<int32_t>{1, 1, 0, 0, 0, 1});
  CHECK(s.rollout_logprobs == std::vector<float>{-0.5f, -0.25f, 0.0f, 0.0f, 0.0f, -1.0f});
  CHECK(s.effective_response_length() == 3);
  CHECK(s.status == SampleStatus::Completed);
  CHECK(s.weight_versions == std::vector<std::string>{"3"});
}

TEST_CASE("append_response_tokens fills slime's None mask and log-probs when tokens arrive", "[sample]") {
  // A response set without mask or log-probs, then tool tokens: mask [1]*previous, log-probs [0]*previous.
  Sample s;
  s.tokens = {1, 2, 3, 4};
  s.response_length = 2;
  s.append_response_tokens({5}, {}, false, TurnInfo{});
  CHECK(s.loss_mask == std::vector<int32_t>{1, 1, 0});
  CHECK(s.rollout_logprobs == std::vector<float>{0.0f, 0.0f, 0.0f});

  // Trainable tokens onto a response with no log-probs cannot be aligned: an error, as in slime.
  Sample t;
  t.tokens = {1, 2, 3};
  t.response_length = 1;
  CHECK_THROWS_WITH(t.append_response_tokens({4}, {-0.1f}, true, TurnInfo{}),
                    Catch::Contains("1 response tokens but no rollout log-probs"));
  CHECK(t.tokens.size() == 3);  // left as it was
}

TEST_CASE("append_response_tokens rejects log-probs that do not match the tokens", "[sample]") {
  Sample s;
  CHECK_THROWS_WITH(s.append_response_tokens({1, 2}, {-0.1f}, true, TurnInfo{}),
                    Catch::Contains("2 trainable tokens need as many rollout log-probs, got 1"));
  CHECK_THROWS_WITH(s.append_response_tokens({1, 2}, {}, true, TurnInfo{}),
                    Catch::Contains("2 trainable tokens need as many rollout log-probs, got 0"));
  CHECK_THROWS_WITH(s.append_response_tokens({1}, {-0.1f}, false, TurnInfo{}),
                    Catch::Contains("non-trainable tokens take no rollout log-probs, got 1"));
  CHECK(s.tokens.empty());
  CHECK(s.response_length == 0);
}

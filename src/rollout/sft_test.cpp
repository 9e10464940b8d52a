// SFT rollout and multi-turn loss masks (slime's MultiTurnLossMaskGenerator) with the real Qwen3 tokenizer and chat
// template (fixtures). Expected ids are built from hand-written text pieces: each message's rendering and which of
// its tokens the assistant produced.
#include <catch2/catch.hpp>

#include "data/data_source.h"
#include "data/dataset.h"
#include "rollout/loss_mask.h"
#include "rollout/sft_rollout.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/test_fixtures.h"

using namespace slime;
using namespace slime::rollout;
using ordered_json = nlohmann::ordered_json;

namespace {

const tokenizer::Tokenizer& qwen3_tokenizer() { return tokenizer::test::fixture_tokenizer("qwen3"); }

const tokenizer::ChatTemplate& qwen3_template() {
  static const tokenizer::ChatTemplate chat =
      tokenizer::ChatTemplate::from_tokenizer_config(tokenizer::test::fixture_path("qwen3", "tokenizer_config.json"));
  return chat;
}

std::vector<int32_t> enc(const std::string& text) { return qwen3_tokenizer().encode(text, false); }

// Expected output built piece by piece: (text, trained?) where a trained assistant piece is
// "<|im_start|>assistant\n" (mask 0) followed by the trained text (mask 1).
struct Expected {
  std::vector<int32_t> ids, mask;
  Expected& zeros(const std::string& text) {
    for (int32_t id : enc(text)) {
      ids.push_back(id);
      mask.push_back(0);
    }
    return *this;
  }
  Expected& ones(const std::string& text) {
    for (int32_t id : enc(text)) {
      ids.push_back(id);
      mask.push_back(1);
    }
    return *this;
  }
  Expected& assistant(const std::string& trained_text) { return zeros("<|im_start|>assistant\n").ones(trained_text); }
};

void check_equal(const TokensWithLossMask& got, const Expected& want) {
  CHECK(qwen3_tokenizer().decode(got.token_ids) == qwen3_tokenizer().decode(want.ids));
  CHECK(got.token_ids == want.ids);
  CHECK(got.loss_mask == want.mask);
}

ordered_json msg(const std::string& role, const std::string& content) {
  return ordered_json{{"role", role}, {"content", content}};
}

}  // namespace

TEST_CASE("loss mask generator measures the Qwen3 template: no default system prompt, 3-token generation prompt") {
  for (const char* type : {"qwen", "qwen3"}) {
    SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), type);
    CHECK(gen.system_message_length() == 0);
    CHECK(gen.gen_token_length() == 3);  // <|im_start|> assistant \n
  }
}

TEST_CASE("loss mask types other than qwen and qwen3 are an error naming the supported ones") {
  for (const char* type : {"qwen3_5", "distill_qwen", "llama"}) {
    CHECK_THROWS_WITH(SftMaskGenerator(qwen3_tokenizer(), qwen3_template(), type),
                      Catch::Contains(std::string("--loss-mask-type ") + type) &&
                          Catch::Contains("supported types are qwen and qwen3"));
  }
}

TEST_CASE("qwen3 loss mask, single turn: literal ids of the assistant turn") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen3");
  const ordered_json messages = ordered_json::array({msg("user", "What is 2+2?"), msg("assistant", "4")});
  TokensWithLossMask got = gen.get_loss_mask(messages);
  // The assistant turn rendered as the latest turn gets Qwen3's empty think block; the mask covers it, the answer,
  // <|im_end|> and the newline after it.
  const std::vector<int32_t> user = enc("<|im_start|>user\nWhat is 2+2?<|im_end|>\n");
  const std::vector<int32_t> assistant = {151644, 77091, 198, 151667, 271, 151668, 271, 19, 151645, 198};
  const std::vector<int32_t> assistant_mask = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  std::vector<int32_t> ids = user, mask(user.size(), 0);
  ids.insert(ids.end(), assistant.begin(), assistant.end());
  mask.insert(mask.end(), assistant_mask.begin(), assistant_mask.end());
  CHECK(got.token_ids == ids);
  CHECK(got.loss_mask == mask);
  CHECK(response_length_from_loss_mask(got.loss_mask) == 7);
  CHECK(gen.text_from_loss_mask(got.token_ids, got.loss_mask) ==
        std::vector<std::string>{"<think>\n\n</think>\n\n4<|im_end|>\n"});
}

TEST_CASE("qwen loss mask, single turn: each message rendered alone (no think block)") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen");
  const ordered_json messages = ordered_json::array({msg("user", "What is 2+2?"), msg("assistant", "4")});
  Expected want;
  want.zeros("<|im_start|>user\nWhat is 2+2?<|im_end|>\n").assistant("4<|im_end|>\n");
  check_equal(gen.get_loss_mask(messages), want);
}

TEST_CASE("qwen3 loss mask, multi-turn with a system message and reasoning") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen3");
  const ordered_json messages = ordered_json::array(
      {msg("system", "You are a careful assistant."), msg("user", "Name a prime."), msg("assistant", "7"),
       msg("user", "And an even one?"), msg("assistant", "<think>\nOnly one even prime.\n</think>\n\n2")});
  Expected want;
  want.zeros("<|im_start|>system\nYou are a careful assistant.<|im_end|>\n")
      .zeros("<|im_start|>user\nName a prime.<|im_end|>\n")
      .assistant("<think>\n\n</think>\n\n7<|im_end|>\n")
      .zeros("<|im_start|>user\nAnd an even one?<|im_end|>\n")
      .assistant("<think>\nOnly one even prime.\n</think>\n\n2<|im_end|>\n");
  TokensWithLossMask got = gen.get_loss_mask(messages);
  check_equal(got, want);
  CHECK(gen.text_from_loss_mask(got.token_ids, got.loss_mask) ==
        std::vector<std::string>{"<think>\n\n</think>\n\n7<|im_end|>\n",
                                 "<think>\nOnly one even prime.\n</think>\n\n2<|im_end|>\n"});
}

TEST_CASE("qwen loss mask, multi-turn with a system message") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen");
  const ordered_json messages = ordered_json::array({msg("system", "Be brief."), msg("user", "Hi"),
                                                     msg("assistant", "Hello!"), msg("user", "Bye"),
                                                     msg("assistant", "Goodbye.")});
  Expected want;
  want.zeros("<|im_start|>system\nBe brief.<|im_end|>\n")
      .zeros("<|im_start|>user\nHi<|im_end|>\n")
      .assistant("Hello!<|im_end|>\n")
      .zeros("<|im_start|>user\nBye<|im_end|>\n")
      .assistant("Goodbye.<|im_end|>\n");
  check_equal(gen.get_loss_mask(messages), want);
}

TEST_CASE("step_loss_mask 0 on an assistant turn clears its mask; 1 and true keep it") {
  for (const char* type : {"qwen", "qwen3"}) {
    SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), type);
    ordered_json first = msg("assistant", "wrong");
    first["step_loss_mask"] = 0;
    ordered_json second = msg("assistant", "right");
    second["step_loss_mask"] = 1;
    ordered_json third = msg("assistant", "also right");
    third["step_loss_mask"] = true;
    const ordered_json messages =
        ordered_json::array({msg("user", "Q1"), first, msg("user", "Q2"), second, msg("user", "Q3"), third});
    const bool qwen3 = std::string(type) == "qwen3";
    const std::string think = qwen3 ? "<think>\n\n</think>\n\n" : "";
    Expected want;
    want.zeros("<|im_start|>user\nQ1<|im_end|>\n")
        .zeros("<|im_start|>assistant\n" + think + "wrong<|im_end|>\n")
        .zeros("<|im_start|>user\nQ2<|im_end|>\n")
        .assistant(think + "right<|im_end|>\n")
        .zeros("<|im_start|>user\nQ3<|im_end|>\n")
        .assistant(think + "also right<|im_end|>\n");
    INFO("--loss-mask-type " << type);
    check_equal(gen.get_loss_mask(messages), want);
  }
}

TEST_CASE("qwen3 loss mask with tools: consecutive tool messages are one untrained user turn") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen3");
  const ordered_json tools = ordered_json::parse(R"([{"type": "function", "function": {"name": "add",
    "description": "Adds", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}])");
  ordered_json call = msg("assistant", "");
  call["tool_calls"] = ordered_json::parse(R"([{"type": "function", "function": {"name": "add",
    "arguments": {"a": 1}}}, {"type": "function", "function": {"name": "add", "arguments": {"a": 2}}}])");
  const ordered_json messages = ordered_json::array(
      {msg("user", "Add things."), call, msg("tool", "1"), msg("tool", "2"), msg("assistant", "Done: 3.")});
  TokensWithLossMask got = gen.get_loss_mask(messages, tools);
  // The first piece is the tools system block + the user turn, rendered by the template itself.
  const std::string first = qwen3_template().apply(ordered_json::array({messages[0]}), false, tools,
                                                   ordered_json::object());
  CHECK(first.rfind("<|im_start|>system\n# Tools", 0) == 0);
  Expected want;
  want.zeros(first)
      .assistant("<think>\n\n</think>\n\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n"
                 "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2}}\n</tool_call><|im_end|>\n")
      .zeros("<|im_start|>user\n<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n</tool_response>"
             "<|im_end|>\n")
      .assistant("<think>\n\n</think>\n\nDone: 3.<|im_end|>\n");
  check_equal(got, want);
}

TEST_CASE("a template with a default system prompt: qwen drops it from every message after the first") {
  // Qwen2.5's rule: a conversation without a system message gets the default one.
  const tokenizer::ChatTemplate qwen25 = tokenizer::ChatTemplate::from_string(
      "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
      "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
      "helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if not (message.role == "
      "'system' and loop.first) %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
      "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}");
  SftMaskGenerator gen(qwen3_tokenizer(), qwen25, "qwen");
  const std::string system = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                             "assistant.<|im_end|>\n";
  CHECK(gen.system_message_length() == static_cast<int64_t>(enc(system).size()));
  CHECK(gen.gen_token_length() == 3);
  const ordered_json messages = ordered_json::array({msg("user", "Hi"), msg("assistant", "Hello."),
                                                     msg("user", "Again"), msg("assistant", "Hello again.")});
  Expected want;
  want.zeros(system + "<|im_start|>user\nHi<|im_end|>\n")
      .assistant("Hello.<|im_end|>\n")
      .zeros("<|im_start|>user\nAgain<|im_end|>\n")
      .assistant("Hello again.<|im_end|>\n");
  check_equal(gen.get_loss_mask(messages), want);
}

TEST_CASE("response length: from the first 1 of the loss mask to the end") {
  CHECK(response_length_from_loss_mask({0, 0, 1, 1, 0, 1}) == 4);
  CHECK(response_length_from_loss_mask({1, 0}) == 2);
  CHECK(response_length_from_loss_mask({0, 0, 0}) == 0);
  CHECK(response_length_from_loss_mask({}) == 0);
}

TEST_CASE("malformed messages are errors naming the message") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen3");
  CHECK_THROWS_WITH(gen.get_loss_mask(ordered_json("just text")), Catch::Contains("list of messages"));
  CHECK_THROWS_WITH(gen.get_loss_mask(ordered_json::array({msg("user", "a"), ordered_json{{"content", "b"}}})),
                    Catch::Contains("message 1") && Catch::Contains("'role'"));
}

TEST_CASE("sft_rollout fills tokens, response_length, loss_mask, reward and status of every sample") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen3");
  std::vector<data::Sample> prompts(3);
  prompts[0].prompt = ordered_json::array({msg("user", "Q"), msg("assistant", "A")});
  ordered_json skipped = msg("assistant", "not trained");
  skipped["step_loss_mask"] = 0;
  prompts[1].prompt = ordered_json::array({msg("system", "S"), msg("user", "Q1"), skipped, msg("user", "Q2"),
                                           msg("assistant", "trained")});
  prompts[2].prompt = ordered_json::array({msg("user", "Q"), msg("assistant", "A1"), msg("user", "Q2"),
                                           msg("assistant", "A2")});
  auto dataset = std::make_shared<data::PromptDataset>(data::PromptDataset::from_samples(prompts, "sft test"));
  data::DataSourceOptions options;
  options.n_samples_per_prompt = 2;
  data::DataSource source(dataset, options);

  std::vector<data::SampleGroup> groups = sft_rollout(source, 3, gen);
  REQUIRE(groups.size() == 3);
  for (const data::SampleGroup& group : groups) {
    REQUIRE(group.size() == 2);
    for (const data::Sample& s : group) {
      TokensWithLossMask full = gen.get_loss_mask(s.prompt);
      const int64_t first_one = std::find(full.loss_mask.begin(), full.loss_mask.end(), 1) - full.loss_mask.begin();
      CHECK(s.tokens == full.token_ids);
      CHECK(s.response_length == static_cast<int64_t>(full.loss_mask.size()) - first_one);
      CHECK(s.prompt_length() == first_one);
      CHECK(s.loss_mask == std::vector<int32_t>(full.loss_mask.begin() + first_one, full.loss_mask.end()));
      CHECK(s.loss_mask.front() == 1);
      CHECK(s.reward == 0.0);
      CHECK(s.status == data::SampleStatus::Completed);
      CHECK_NOTHROW(s.check_consistent("sft sample"));
    }
  }
  // Sample 1: the skipped assistant turn sits in the prompt; the response is the last assistant turn only.
  const data::Sample& s1 = groups[1][0];
  CHECK(qwen3_tokenizer().decode(std::vector<int32_t>(s1.tokens.end() - s1.response_length, s1.tokens.end())) ==
        "<think>\n\n</think>\n\ntrained<|im_end|>\n");
  // Sample 2: the response runs from the first assistant turn to the end, the user turn in between masked out.
  const data::Sample& s2 = groups[2][0];
  Expected response;
  response.ones("<think>\n\n</think>\n\nA1<|im_end|>\n")
      .zeros("<|im_start|>user\nQ2<|im_end|>\n")
      .zeros("<|im_start|>assistant\n")
      .ones("<think>\n\n</think>\n\nA2<|im_end|>\n");
  CHECK(std::vector<int32_t>(s2.tokens.end() - s2.response_length, s2.tokens.end()) == response.ids);
  CHECK(s2.loss_mask == response.mask);
}

TEST_CASE("sft_rollout: a string prompt is an error naming the sample") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen");
  std::vector<data::Sample> prompts(1);
  prompts[0].prompt = "<|im_start|>user\nQ<|im_end|>\n";
  auto dataset = std::make_shared<data::PromptDataset>(data::PromptDataset::from_samples(prompts, "sft test"));
  data::DataSource source(dataset, data::DataSourceOptions{});
  CHECK_THROWS_WITH(sft_rollout(source, 1, gen),
                    Catch::Contains("sample index 0") && Catch::Contains("list of messages"));
}

TEST_CASE("sft_rollout: a conversation without a trained token has an empty response") {
  SftMaskGenerator gen(qwen3_tokenizer(), qwen3_template(), "qwen3");
  data::Sample s;
  s.prompt = ordered_json::array({msg("user", "Q")});
  fill_sft_sample(s, gen, "sample");
  CHECK(s.response_length == 0);
  CHECK(s.loss_mask.empty());
  CHECK(s.tokens == enc("<|im_start|>user\nQ<|im_end|>\n"));
}

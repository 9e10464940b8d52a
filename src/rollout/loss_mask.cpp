// Multi-turn SFT loss masks: slime's MultiTurnLossMaskGenerator for the qwen and qwen3 formats (see loss_mask.h).
#include "rollout/loss_mask.h"

#include <algorithm>

#include "core/error.h"
#include "core/io.h"

namespace slime::rollout {
namespace {

using ordered_json = nlohmann::ordered_json;

// Start of every occurrence of `needle` in `haystack` (slime's find_all_sublist_indices).
std::vector<size_t> find_all(const std::vector<int32_t>& haystack, const std::vector<int32_t>& needle) {
  std::vector<size_t> at;
  if (needle.empty() || needle.size() > haystack.size()) return at;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i)
    if (std::equal(needle.begin(), needle.end(), haystack.begin() + i)) at.push_back(i);
  return at;
}

// message.get("step_loss_mask", 1) != 1 in Python: true and 1 (or 1.0) keep the mask; anything else clears it.
bool step_loss_mask_on(const ordered_json& message) {
  auto it = message.find("step_loss_mask");
  if (it == message.end()) return true;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() == 1.0;
  return false;
}

std::string role_of(const ordered_json& message) { return message.at("role").get<std::string>(); }

void check_messages(const ordered_json& messages, const ordered_json& tools) {
  SLIME_CHECK(messages.is_array(), "SFT loss mask: expected the prompt to be a list of messages, got ",
              json_type_name(messages));
  for (size_t i = 0; i < messages.size(); ++i) {
    const ordered_json& m = messages[i];
    SLIME_CHECK(m.is_object(), "SFT loss mask: message ", i, ": expected an object, got ", json_type_name(m));
    SLIME_CHECK(m.contains("role") && m["role"].is_string(), "SFT loss mask: message ", i,
                ": expected a string field 'role'");
  }
  SLIME_CHECK(tools.is_null() || tools.is_array(), "SFT loss mask: expected tools to be a list or null, got ",
              json_type_name(tools));
}

}  // namespace

SftMaskGenerator::SftMaskGenerator(const tokenizer::Tokenizer& tokenizer,
                                   const tokenizer::ChatTemplate& chat_template, const std::string& loss_mask_type)
    : tokenizer_(&tokenizer), chat_template_(&chat_template), type_(loss_mask_type) {
  SLIME_CHECK(type_ == "qwen" || type_ == "qwen3", "--loss-mask-type ", type_,
              ": not supported; supported types are qwen and qwen3");

  // slime's get_system_message_length: two identical user turns show where the template puts a message's text,
  // which tells how many tokens of default system prompt a message rendered alone starts with.
  const std::string test_string = "FOR TESTING ONLY";
  const ordered_json user = {{"role", "user"}, {"content", test_string}};
  const ordered_json test_messages = ordered_json::array({user, user});
  const std::vector<int32_t> raw = tokenizer_->encode(test_string, /*add_special_tokens=*/false);
  const std::vector<int32_t> rendered = render_tokens(test_messages, nullptr);
  const std::vector<size_t> at = find_all(rendered, raw);
  SLIME_CHECK(at.size() == 2, "--loss-mask-type ", type_, ": the chat template renders the tokens of '", test_string,
              "' ", at.size(), " times in two user messages (expected 2); cannot measure its system prompt");
  const int64_t idx_1 = static_cast<int64_t>(at[0]), idx_2 = static_cast<int64_t>(at[1]);
  const int64_t raw_len = static_cast<int64_t>(raw.size());
  const int64_t end_interval = static_cast<int64_t>(rendered.size()) - raw_len - idx_2;
  gen_token_length_ = static_cast<int64_t>(render_tokens(test_messages, nullptr, true).size()) -
                      static_cast<int64_t>(rendered.size());
  system_message_length_ = idx_1 - ((idx_2 - idx_1) - end_interval - raw_len);
  SLIME_CHECK(system_message_length_ >= 0 && gen_token_length_ >= 0, "--loss-mask-type ", type_,
              ": the chat template gives a system prompt of ", system_message_length_,
              " tokens and a generation prompt of ", gen_token_length_, " tokens (expected both >= 0)");
}

std::vector<int32_t> SftMaskGenerator::render_tokens(const ordered_json& messages, const ordered_json& tools,
                                                     bool add_generation_prompt) const {
  const std::string text = chat_template_->apply(messages, add_generation_prompt, tools, ordered_json::object());
  return tokenizer_->encode(text, /*add_special_tokens=*/false);
}

void SftMaskGenerator::append_piece(const ordered_json& message, size_t index, std::vector<int32_t> piece,
                                    TokensWithLossMask& out) const {
  const std::string role = role_of(message);
  if (role != "system" && index > 0) {  // message_ids[system_message_length:] (Python slicing never fails)
    piece.erase(piece.begin(), piece.begin() + std::min<int64_t>(system_message_length_, piece.size()));
  }
  const int64_t n = static_cast<int64_t>(piece.size());
  std::vector<int32_t> mask(n, 0);
  if (role == "assistant" && step_loss_mask_on(message))
    for (int64_t t = std::min(gen_token_length_, n); t < n; ++t) mask[t] = 1;
  out.token_ids.insert(out.token_ids.end(), piece.begin(), piece.end());
  out.loss_mask.insert(out.loss_mask.end(), mask.begin(), mask.end());
}

TokensWithLossMask SftMaskGenerator::qwen(const ordered_json& messages, const ordered_json& tools) const {
  TokensWithLossMask out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ordered_json one = ordered_json::array({messages[i]});
    append_piece(messages[i], i, render_tokens(one, i == 0 ? tools : ordered_json(nullptr)), out);
  }
  return out;
}

TokensWithLossMask SftMaskGenerator::qwen3(const ordered_json& messages, const ordered_json& tools) const {
  const ordered_json prefix_message = {{"role", "user"}, {"content", "FOR CALCULATING LOSS MASK ONLY"}};
  const std::vector<int32_t> prefix_ids = render_tokens(ordered_json::array({prefix_message}), nullptr);
  const size_t np = prefix_ids.size();
  TokensWithLossMask out;
  size_t i = 0;
  while (i < messages.size()) {
    // Consecutive tool messages render as one user turn: they form one piece.
    size_t group_end = i + 1;
    if (role_of(messages[i]) == "tool")
      while (group_end < messages.size() && role_of(messages[group_end]) == "tool") ++group_end;
    ordered_json group = ordered_json::array();
    for (size_t j = i; j < group_end; ++j) group.push_back(messages[j]);

    std::vector<int32_t> piece;
    if (i == 0) {  // the group, then the fixed user message, cut off again
      ordered_json tailed = group;
      tailed.push_back(prefix_message);
      std::vector<int32_t> ids = render_tokens(tailed, tools);
      SLIME_CHECK(ids.size() >= np && std::equal(prefix_ids.begin(), prefix_ids.end(), ids.end() - np),
                  "--loss-mask-type qwen3: message 0: the chat template does not end the rendering with the "
                  "separately rendered user message; is this a Qwen3 template?");
      piece = std::vector<int32_t>(ids.begin(), ids.end() - np);
    } else {  // the fixed user message, then the group, cut off again
      ordered_json prefixed = ordered_json::array({prefix_message});
      for (const auto& m : group) prefixed.push_back(m);
      std::vector<int32_t> ids = render_tokens(prefixed, nullptr);
      SLIME_CHECK(ids.size() >= np && std::equal(prefix_ids.begin(), prefix_ids.end(), ids.begin()),
                  "--loss-mask-type qwen3: message ", i, ": the chat template does not start the rendering with the "
                  "separately rendered user message; is this a Qwen3 template?");
      piece = std::vector<int32_t>(ids.begin() + np, ids.end());
    }
    append_piece(messages[i], i, std::move(piece), out);
    i = group_end;
  }
  return out;
}

TokensWithLossMask SftMaskGenerator::get_loss_mask(const ordered_json& messages, const ordered_json& tools) const {
  check_messages(messages, tools);
  TokensWithLossMask out = type_ == "qwen" ? qwen(messages, tools) : qwen3(messages, tools);
  SLIME_ASSERT(out.token_ids.size() == out.loss_mask.size(), "token ids and loss mask of different lengths");
  return out;
}

std::vector<std::string> SftMaskGenerator::text_from_loss_mask(const std::vector<int32_t>& token_ids,
                                                               const std::vector<int32_t>& loss_mask) const {
  SLIME_CHECK(token_ids.size() == loss_mask.size(), "text_from_loss_mask: ", token_ids.size(), " tokens but ",
              loss_mask.size(), " mask entries");
  std::vector<std::string> texts;
  std::vector<int32_t> run;
  for (size_t t = 0; t <= token_ids.size(); ++t) {
    if (t < token_ids.size() && loss_mask[t] == 1) {
      run.push_back(token_ids[t]);
    } else if (!run.empty()) {
      texts.push_back(tokenizer_->decode(run));
      run.clear();
    }
  }
  return texts;
}

int64_t response_length_from_loss_mask(const std::vector<int32_t>& loss_mask) {
  auto first = std::find(loss_mask.begin(), loss_mask.end(), 1);
  return first == loss_mask.end() ? 0 : static_cast<int64_t>(loss_mask.end() - first);
}

}  // namespace slime::rollout

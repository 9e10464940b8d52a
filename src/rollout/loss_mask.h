// Multi-turn SFT loss masks (slime's MultiTurnLossMaskGenerator, slime/utils/mask_utils.py): an OpenAI message list
// becomes the token ids the chat template renders and a loss mask that is 1 on what the assistant wrote.
//
// Like slime, each message (or run of consecutive tool messages, for qwen3) is rendered and tokenised on its own and
// the pieces are concatenated; no character offsets are needed:
//   qwen   each message rendered alone; messages after the first lose the template's default system prompt
//          (`system_message_length` tokens, 0 for Qwen3's template).
//   qwen3  each message rendered after (or, for the first, before) a fixed user message that is then cut off, so
//          the template sees it as the latest turn (Qwen3 then renders an assistant turn with its
//          `<think>\n\n</think>\n\n` block); consecutive tool messages form one group (one user turn).
// An assistant piece has mask 0 on its first `gen_token_length` tokens (the generation prompt,
// `<|im_start|>assistant\n`) and 1 on the rest: content, `<|im_end|>` and the newline after it, as slime trains. Any
// other piece is 0, and so is an assistant piece whose `step_loss_mask` is not 1 (slime's
// message.get("step_loss_mask", 1) != 1). Both lengths are measured from the template at construction, as slime does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace slime::rollout {

struct TokensWithLossMask {
  std::vector<int32_t> token_ids;  // [T]
  std::vector<int32_t> loss_mask;  // [T] 1 = trained on
};

class SftMaskGenerator {
 public:
  // loss_mask_type: --loss-mask-type, "qwen" or "qwen3" (others are an error listing these). The tokenizer and the
  // chat template must outlive the generator.
  SftMaskGenerator(const tokenizer::Tokenizer& tokenizer, const tokenizer::ChatTemplate& chat_template,
                   const std::string& loss_mask_type);

  // messages: a list of {role, content, ...} (an optional step_loss_mask per message); tools: a list or null.
  // Errors name the message index and field that is wrong.
  TokensWithLossMask get_loss_mask(const nlohmann::ordered_json& messages,
                                   const nlohmann::ordered_json& tools = nullptr) const;

  const std::string& loss_mask_type() const { return type_; }
  int64_t system_message_length() const { return system_message_length_; }
  int64_t gen_token_length() const { return gen_token_length_; }

  // Decoded text of each run of 1s in the mask (slime's get_text_from_loss_mask; handy for inspecting data).
  std::vector<std::string> text_from_loss_mask(const std::vector<int32_t>& token_ids,
                                               const std::vector<int32_t>& loss_mask) const;

 private:
  // apply_chat_template(messages, tokenize=True): rendered without a generation prompt, tokenised without
  // special tokens.
  std::vector<int32_t> render_tokens(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                     bool add_generation_prompt = false) const;
  TokensWithLossMask qwen(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools) const;
  TokensWithLossMask qwen3(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools) const;
  // Appends one rendered piece with its mask.
  void append_piece(const nlohmann::ordered_json& message, size_t index, std::vector<int32_t> piece,
                    TokensWithLossMask& out) const;

  const tokenizer::Tokenizer* tokenizer_;
  const tokenizer::ChatTemplate* chat_template_;
  std::string type_;
  int64_t system_message_length_ = 0;
  int64_t gen_token_length_ = 0;
};

// Tokens from the first 1 of the mask to the end (slime's get_response_lengths); 0 when the mask has no 1.
int64_t response_length_from_loss_mask(const std::vector<int32_t>& loss_mask);

}  // namespace slime::rollout

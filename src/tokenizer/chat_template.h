// Hugging Face chat templates: turns an OpenAI-style message list into the prompt string a model was trained on,
// rendering the model's own Jinja template the way transformers' apply_chat_template does.
// Variables the template sees: messages, tools (or none), documents (none unless kwargs sets it),
// add_generation_prompt, the tokenizer's special tokens that are set (bos_token, eos_token, unk_token, sep_token,
// pad_token, cls_token, mask_token as strings, additional_special_tokens as a list), then the extra kwargs
// (e.g. enable_thinking=false for Qwen3, date_string for Llama 3.1).
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "core/io.h"
#include "tokenizer/jinja.h"

namespace slime::tokenizer {

class ChatTemplate {
 public:
  // Reads `chat_template` (a string, or a list of {"name", "template"}) and the special tokens (strings or
  // {"content": ...} objects) from a tokenizer_config.json. Without a `chat_template` key, falls back to the
  // chat_template.jinja / chat_template.json files newer transformers versions save beside it. Errors name the file.
  static ChatTemplate from_tokenizer_config(const std::string& path);
  static ChatTemplate from_string(const std::string& source, const slime::json& special_tokens = {});

  // messages: list of {role, content, ...}; tools: list or null; kwargs: extra template variables (an object).
  // With named templates, a "tool_use" template is used when tools are given, "default" otherwise (as transformers).
  std::string apply(const slime::json& messages, bool add_generation_prompt, const slime::json& tools = nullptr,
                    const slime::json& kwargs = slime::json::object()) const;
  // Same, keeping the key order of the documents (what `tojson` prints for tools and arguments, as in Python).
  std::string apply(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                    const nlohmann::ordered_json& tools, const nlohmann::ordered_json& kwargs) const;

  // Pins the clock strftime_now() reads (for reproducible prompts and tests); by default it is the local time.
  void pin_clock(const std::tm& now) { options_.now = now; }
  // Special tokens passed to the template, normalized to strings (additional_special_tokens: list of strings).
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }

 private:
  ChatTemplate() = default;
  static ChatTemplate build(const std::map<std::string, std::string>& named_sources, const std::string& origin,
                            const nlohmann::ordered_json& special_tokens);

  std::map<std::string, std::shared_ptr<const jinja::Template>> templates_;  // "default", "tool_use", ...
  std::string origin_;  // where the template came from, for error messages
  nlohmann::ordered_json special_tokens_ = nlohmann::ordered_json::object();
  jinja::RenderOptions options_;
};

}  // namespace slime::tokenizer

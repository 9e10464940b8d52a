// Hugging Face chat templates on top of the Jinja interpreter (see chat_template.h).
#include "tokenizer/chat_template.h"

#include "core/error.h"

namespace slime::tokenizer {
namespace {

using ordered_json = nlohmann::ordered_json;

const char* const kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                         "pad_token", "cls_token", "mask_token"};

// A special token as tokenizer_config.json stores it: "<s>", {"content": "<s>", ...} (an AddedToken), or null.
bool token_string(const ordered_json& value, const std::string& where, std::string* out) {
  if (value.is_null()) return false;
  if (value.is_string()) {
    *out = value.get<std::string>();
    return true;
  }
  SLIME_CHECK(value.is_object() && value.contains("content") && value["content"].is_string(), where,
              ": expected a string or an object with a string 'content', got ", value.dump());
  *out = value["content"].get<std::string>();
  return true;
}

// The special tokens transformers' special_tokens_map passes to templates: only those that are set.
ordered_json normalize_special_tokens(const ordered_json& source, const std::string& where) {
  ordered_json tokens = ordered_json::object();
  if (source.is_null()) return tokens;
  SLIME_CHECK(source.is_object(), where, ": special tokens must be a JSON object, got ", source.type_name());
  for (const char* key : kSpecialTokenKeys) {
    std::string token;
    if (source.contains(key) && token_string(source[key], where + ": field '" + key + "'", &token))
      tokens[key] = token;
  }
  if (source.contains("additional_special_tokens") && !source["additional_special_tokens"].is_null()) {
    const ordered_json& extra = source["additional_special_tokens"];
    SLIME_CHECK(extra.is_array(), where, ": field 'additional_special_tokens': expected a list, got ",
                extra.type_name());
    ordered_json list = ordered_json::array();
    for (size_t i = 0; i < extra.size(); ++i) {
      std::string token;
      if (token_string(extra[i], cat(where, ": field 'additional_special_tokens'[", i, "]"), &token))
        list.push_back(token);
    }
    tokens["additional_special_tokens"] = list;
  }
  return tokens;
}

// chat_template as a string or a list of {"name", "template"} -> name -> source.
std::map<std::string, std::string> named_templates(const ordered_json& value, const std::string& where) {
  std::map<std::string, std::string> named;
  if (value.is_string()) {
    named["default"] = value.get<std::string>();
    return named;
  }
  SLIME_CHECK(value.is_array(), where, ": field 'chat_template': expected a string or a list of {name, template}, got ",
              value.type_name());
  for (size_t i = 0; i < value.size(); ++i) {
    const ordered_json& entry = value[i];
    bool ok = entry.is_object() && entry.contains("name") && entry["name"].is_string() && entry.contains("template") &&
              entry["template"].is_string();
    SLIME_CHECK(ok, where, ": field 'chat_template'[", i, "]: expected {\"name\": string, \"template\": string}, got ",
                entry.dump());
    named[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
  }
  SLIME_CHECK(!named.empty(), where, ": field 'chat_template' is an empty list");
  return named;
}

std::string parent_directory(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

ChatTemplate ChatTemplate::build(const std::map<std::string, std::string>& named_sources, const std::string& origin,
                                 const ordered_json& special_tokens) {
  ChatTemplate result;
  result.origin_ = origin;
  result.special_tokens_ = special_tokens;
  for (const auto& [name, source] : named_sources) {
    std::string label = named_sources.size() == 1 ? origin : origin + " [" + name + "]";
    result.templates_[name] = std::make_shared<const jinja::Template>(source, label);
  }
  return result;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path) {
  ordered_json config;
  try {
    config = ordered_json::parse(read_text_file(path));
  } catch (const ordered_json::parse_error& e) {
    SLIME_FAIL(path, ": malformed JSON: ", e.what());
  }
  SLIME_CHECK(config.is_object(), path, ": expected a JSON object at the top level, got ", config.type_name());
  ordered_json special_tokens = normalize_special_tokens(config, path);

  if (config.contains("chat_template") && !config["chat_template"].is_null())
    return build(named_templates(config["chat_template"], path), path, special_tokens);

  // Newer transformers versions save the template beside the config instead of inside it.
  std::string directory = parent_directory(path);
  std::string jinja_path = path_join(directory, "chat_template.jinja");
  if (path_exists(jinja_path)) return build({{"default", read_text_file(jinja_path)}}, jinja_path, special_tokens);
  std::string json_path = path_join(directory, "chat_template.json");
  if (path_exists(json_path)) {
    ordered_json doc;
    try {
      doc = ordered_json::parse(read_text_file(json_path));
    } catch (const ordered_json::parse_error& e) {
      SLIME_FAIL(json_path, ": malformed JSON: ", e.what());
    }
    SLIME_CHECK(doc.is_object() && doc.contains("chat_template"), json_path, ": expected an object with 'chat_template'");
    return build(named_templates(doc["chat_template"], json_path), json_path, special_tokens);
  }
  SLIME_FAIL(path, ": no 'chat_template' field, and no chat_template.jinja or chat_template.json beside it");
}

ChatTemplate ChatTemplate::from_string(const std::string& source, const slime::json& special_tokens) {
  return build({{"default", source}}, "chat template", normalize_special_tokens(ordered_json(special_tokens),
                                                                               "chat template special tokens"));
}

std::string ChatTemplate::apply(const slime::json& messages, bool add_generation_prompt, const slime::json& tools,
                                const slime::json& kwargs) const {
  return apply(ordered_json(messages), add_generation_prompt, ordered_json(tools), ordered_json(kwargs));
}

std::string ChatTemplate::apply(const ordered_json& messages, bool add_generation_prompt, const ordered_json& tools,
                                const ordered_json& kwargs) const {
  SLIME_CHECK(messages.is_array(), origin_, ": messages must be a list of {role, content} objects, got ",
              messages.type_name());
  SLIME_CHECK(tools.is_null() || tools.is_array(), origin_, ": tools must be a list or null, got ", tools.type_name());
  SLIME_CHECK(kwargs.is_object(), origin_, ": template kwargs must be a JSON object, got ", kwargs.type_name());

  const jinja::Template* chosen = nullptr;
  if (!tools.is_null() && templates_.count("tool_use")) chosen = templates_.at("tool_use").get();
  else if (templates_.count("default")) chosen = templates_.at("default").get();
  if (!chosen) {
    std::string names;
    for (const auto& entry : templates_) names += (names.empty() ? "" : ", ") + entry.first;
    SLIME_FAIL(origin_, ": several chat templates (", names, ") and none named 'default'");
  }

  ordered_json context = ordered_json::object();
  context["messages"] = messages;
  context["tools"] = tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it) context[it.key()] = it.value();
  for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
    const std::string& key = it.key();
    SLIME_CHECK(key != "messages" && key != "tools" && key != "add_generation_prompt", origin_,
                ": template kwargs may not set '", key, "': it is an argument of apply()");
    context[key] = it.value();
  }
  return chosen->render(context, options_);
}

}  // namespace slime::tokenizer

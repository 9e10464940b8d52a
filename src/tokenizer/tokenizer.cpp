// Tokenizer pipeline (see tokenizer.h): loads tokenizer.json, assigns added-token ids the way HF's deserializer
// does (the content's existing id, else the next id after the model vocab), runs encode / decode, and holds the
// post-processors (ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence) and decoders
// (ByteLevel, none).
#include "tokenizer/tokenizer.h"

#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace slime::tokenizer {

namespace {

// One element of a TemplateProcessing template: the input sequence, or fixed special-token ids.
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<int32_t> special_ids;
};

struct PostProcessor {
  enum class Kind { ByteLevel, Template, Sequence };
  Kind kind = Kind::ByteLevel;
  std::vector<TemplatePiece> single;     // Template: the single-sequence template
  std::vector<PostProcessor> children;   // Sequence
};

enum class DecoderKind { None, ByteLevel };

TemplatePiece parse_template_piece(const json& piece, const json& special_tokens, const std::string& where) {
  std::string special_name;
  if (piece.is_string()) {  // "$A", "$B:1", "[CLS]", "[SEP]:1"
    std::string name = piece.get<std::string>();
    name = name.substr(0, name.find(':'));
    if (!name.empty() && name[0] == '$') {
      SLIME_CHECK(name != "$B" && name != "$b", where, ": the single-sequence template cannot use $B");
      return {true, {}};
    }
    special_name = name;
  } else if (piece.is_object() && json_has(piece, "Sequence")) {
    const std::string id = json_string(piece["Sequence"], "id", where + ".Sequence");
    SLIME_CHECK(id == "A", where, ": the single-sequence template cannot use sequence ", id);
    return {true, {}};
  } else if (piece.is_object() && json_has(piece, "SpecialToken")) {
    special_name = json_string(piece["SpecialToken"], "id", where + ".SpecialToken");
  } else {
    SLIME_FAIL(where, ": expected {\"Sequence\": ...}, {\"SpecialToken\": ...} or a string, got ", piece.dump());
  }
  SLIME_CHECK(special_tokens.is_object() && json_has(special_tokens, special_name), where, ": special token '",
              special_name, "' is not listed in special_tokens");
  const json& entry = special_tokens[special_name];
  SLIME_CHECK(json_has(entry, "ids") && entry["ids"].is_array(), where, ": special_tokens['", special_name,
              "'].ids: expected an array");
  TemplatePiece result;
  for (const json& id : entry["ids"]) {
    SLIME_CHECK(id.is_number_integer(), where, ": special_tokens['", special_name, "'].ids: expected integers");
    result.special_ids.push_back(id.get<int32_t>());
  }
  return result;
}

// ["[CLS]", 101] of BertProcessing / RobertaProcessing.
int32_t parse_token_pair(const json& config, const char* key, const std::string& where) {
  SLIME_CHECK(json_has(config, key) && config[key].is_array() && config[key].size() == 2 &&
                  config[key][1].is_number_integer(),
              where, ": field '", key, "': expected [token, id]");
  return config[key][1].get<int32_t>();
}

PostProcessor parse_post_processor(const json& config, const std::string& where) {
  SLIME_CHECK(config.is_object(), where, ": expected an object, got ", config.type_name());
  const std::string type = json_string(config, "type", where);
  PostProcessor processor;
  if (type == "ByteLevel") {
    processor.kind = PostProcessor::Kind::ByteLevel;  // only trims offsets: ids are unchanged
  } else if (type == "TemplateProcessing") {
    processor.kind = PostProcessor::Kind::Template;
    SLIME_CHECK(json_has(config, "single") && config["single"].is_array(), where,
                ": field 'single': expected an array");
    const json special_tokens = json_has(config, "special_tokens") ? config["special_tokens"] : json::object();
    const json& single = config["single"];
    for (size_t i = 0; i < single.size(); ++i)
      processor.single.push_back(parse_template_piece(single[i], special_tokens, cat(where, ".single[", i, "]")));
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    processor.kind = PostProcessor::Kind::Template;  // single sequence: [cls] $A [sep]
    processor.single = {{false, {parse_token_pair(config, "cls", where)}},
                        {true, {}},
                        {false, {parse_token_pair(config, "sep", where)}}};
  } else if (type == "Sequence") {
    processor.kind = PostProcessor::Kind::Sequence;
    SLIME_CHECK(json_has(config, "processors") && config["processors"].is_array(), where,
                ": field 'processors': expected an array");
    const json& children = config["processors"];
    for (size_t i = 0; i < children.size(); ++i)
      processor.children.push_back(parse_post_processor(children[i], cat(where, ".processors[", i, "]")));
  } else {
    SLIME_FAIL(where, ": unsupported post_processor type '", type,
               "' (supported: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)");
  }
  return processor;
}

std::vector<int32_t> post_process(const PostProcessor& processor, std::vector<int32_t> ids, bool add_special_tokens) {
  switch (processor.kind) {
    case PostProcessor::Kind::ByteLevel:
      return ids;
    case PostProcessor::Kind::Template: {
      std::vector<int32_t> out;
      out.reserve(ids.size() + 4);
      for (const TemplatePiece& piece : processor.single) {
        if (piece.is_sequence) {
          out.insert(out.end(), ids.begin(), ids.end());
        } else if (add_special_tokens) {
          out.insert(out.end(), piece.special_ids.begin(), piece.special_ids.end());
        }
      }
      return out;
    }
    case PostProcessor::Kind::Sequence:
      for (const PostProcessor& child : processor.children)
        ids = post_process(child, std::move(ids), add_special_tokens);
      return ids;
  }
  return ids;
}

DecoderKind parse_decoder(const json& config, const std::string& where) {
  if (config.is_null()) return DecoderKind::None;
  SLIME_CHECK(config.is_object(), where, ": expected an object or null, got ", config.type_name());
  const std::string type = json_string(config, "type", where);
  SLIME_CHECK(type == "ByteLevel", where, ": unsupported decoder type '", type, "' (supported: ByteLevel, null)");
  return DecoderKind::ByteLevel;
}

// The bytes a token stands for under the ByteLevel decoder: each char mapped back to its byte, or the token's own
// UTF-8 when some char is not a byte-level char (added tokens such as "<|im_start|>" with a space, ...).
std::string byte_level_bytes(const std::string& token) {
  std::string bytes;
  bytes.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    uint32_t cp;
    pos += utf8_decode(token, pos, cp);
    const int byte = unicode_to_byte(cp);
    if (byte < 0) return token;
    bytes += static_cast<char>(byte);
  }
  return bytes;
}

AddedToken parse_added_token(const json& entry, const std::string& where) {
  SLIME_CHECK(entry.is_object(), where, ": expected an object, got ", entry.type_name());
  AddedToken token;
  const int64_t id = json_int(entry, "id", where);
  SLIME_CHECK(id >= 0 && id < (int64_t{1} << 31), where, ": field 'id': ", id, " out of range");
  token.id = static_cast<int32_t>(id);
  token.content = json_string(entry, "content", where);
  token.special = json_bool_or(entry, "special", false, where);
  token.lstrip = json_bool_or(entry, "lstrip", false, where);
  token.rstrip = json_bool_or(entry, "rstrip", false, where);
  token.single_word = json_bool_or(entry, "single_word", false, where);
  token.normalized = json_bool_or(entry, "normalized", !token.special, where);
  return token;
}

bool same_flags(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.special == b.special && a.lstrip == b.lstrip && a.rstrip == b.rstrip &&
         a.single_word == b.single_word && a.normalized == b.normalized;
}

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  BpeModel model;
  std::optional<Normalizer> normalizer;
  std::optional<PreTokenizer> pre_tokenizer;
  std::optional<PostProcessor> post_processor;
  DecoderKind decoder = DecoderKind::None;
  AddedVocabulary added;
  std::unordered_map<std::string, int32_t> added_content_to_id;
  std::unordered_map<int32_t, std::string> added_id_to_token;  // content, or its normalized form when normalized
  std::unordered_set<std::string> special_contents;
  int32_t vocab_size = 0;
  std::vector<std::string> decoded_bytes;  // [vocab_size]: what each id contributes to decode's byte stream
  std::vector<uint8_t> id_has_token;       // [vocab_size]
  std::vector<uint8_t> id_is_special;      // [vocab_size]

  const std::string* token_of(int32_t id) const {
    const auto added_it = added_id_to_token.find(id);
    if (added_it != added_id_to_token.end()) return &added_it->second;
    return model.id_to_token(id);
  }
  void normalize_text(std::string& text) const {
    if (normalizer) normalize(*normalizer, text);
  }
};

Tokenizer Tokenizer::from_file(const std::string& tokenizer_json_path) {
  SLIME_CHECK(path_exists(tokenizer_json_path), tokenizer_json_path, ": tokenizer file not found");
  return from_json(read_json_file(tokenizer_json_path), tokenizer_json_path);
}

Tokenizer Tokenizer::from_json(const json& document, const std::string& source) {
  SLIME_CHECK(document.is_object(), source, ": expected a JSON object at the top level, got ", document.type_name());
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  if (json_has(document, "version") && !document["version"].is_null()) {
    const std::string version = json_string(document, "version", source);
    SLIME_CHECK(version == "1.0", source, ": field 'version': unknown tokenizer version '", version,
                "' (expected 1.0)");
  }
  for (const char* key : {"truncation", "padding"})
    SLIME_CHECK(!json_has(document, key) || document[key].is_null(), source, ": field '", key,
                "' is set; slime-hpc does not truncate or pad inside the tokenizer (set it to null)");

  SLIME_CHECK(json_has(document, "model"), source, ": field 'model' is missing");
  impl->model = BpeModel::from_json(document["model"], source + ": model");
  if (json_has(document, "normalizer") && !document["normalizer"].is_null())
    impl->normalizer = parse_normalizer(document["normalizer"], source + ": normalizer");
  if (json_has(document, "pre_tokenizer") && !document["pre_tokenizer"].is_null())
    impl->pre_tokenizer = parse_pre_tokenizer(document["pre_tokenizer"], source + ": pre_tokenizer");
  if (json_has(document, "post_processor") && !document["post_processor"].is_null())
    impl->post_processor = parse_post_processor(document["post_processor"], source + ": post_processor");
  impl->decoder = parse_decoder(json_has(document, "decoder") ? document["decoder"] : json(), source + ": decoder");

  // Added tokens, with ids assigned as HF's deserializer does (AddedVocabulary::add_tokens).
  std::vector<AddedToken> added_tokens;
  if (json_has(document, "added_tokens") && !document["added_tokens"].is_null()) {
    const json& entries = document["added_tokens"];
    SLIME_CHECK(entries.is_array(), source, ": field 'added_tokens': expected an array, got ", entries.type_name());
    std::unordered_map<int32_t, size_t> index_of_id;
    int32_t next_id = static_cast<int32_t>(impl->model.vocab_entries());
    for (size_t i = 0; i < entries.size(); ++i) {
      AddedToken token = parse_added_token(entries[i], cat(source, ": added_tokens[", i, "]"));
      if (token.content.empty()) continue;
      const auto existing = impl->added_content_to_id.find(token.content);
      if (existing != impl->added_content_to_id.end() &&
          same_flags(added_tokens[index_of_id.at(existing->second)], token))
        continue;
      const int32_t file_id = token.id;
      if (existing != impl->added_content_to_id.end()) {
        token.id = existing->second;
      } else if (auto model_id = impl->model.token_to_id(token.content)) {
        token.id = *model_id;
      } else {
        token.id = next_id++;
      }
      if (token.id != file_id)
        SLIME_WARN(source, ": added token '", token.content, "' is listed with id ", file_id, " but gets id ",
                   token.id, " (as in HF tokenizers: the vocab's id, else the next free id)");
      impl->added_content_to_id[token.content] = token.id;
      if (token.special) impl->special_contents.insert(token.content);
      const auto slot = index_of_id.find(token.id);
      if (slot != index_of_id.end()) {
        added_tokens[slot->second] = token;
      } else {
        index_of_id[token.id] = added_tokens.size();
        added_tokens.push_back(token);
      }
    }
  }
  std::vector<std::string> normalized_contents;
  for (const AddedToken& token : added_tokens) {
    std::string normalized = token.content;
    if (token.normalized) impl->normalize_text(normalized);
    impl->added_id_to_token[token.id] = normalized;
    normalized_contents.push_back(std::move(normalized));
  }
  impl->added = AddedVocabulary(added_tokens, normalized_contents);

  int32_t max_id = impl->model.max_id();
  for (const AddedToken& token : added_tokens) max_id = std::max(max_id, token.id);
  impl->vocab_size = max_id + 1;
  impl->decoded_bytes.resize(static_cast<size_t>(impl->vocab_size));
  impl->id_has_token.assign(static_cast<size_t>(impl->vocab_size), 0);
  impl->id_is_special.assign(static_cast<size_t>(impl->vocab_size), 0);
  for (int32_t id = 0; id < impl->vocab_size; ++id) {
    const std::string* token = impl->token_of(id);
    if (token == nullptr) continue;
    impl->id_has_token[id] = 1;
    impl->id_is_special[id] = impl->special_contents.count(*token) > 0;
    impl->decoded_bytes[id] = impl->decoder == DecoderKind::ByteLevel ? byte_level_bytes(*token) : *token;
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  const Impl& impl = *impl_;
  const size_t bad = utf8_first_invalid(text);
  SLIME_CHECK(bad == std::string::npos, "encode (", impl.source, "): text is not valid UTF-8 (bad byte 0x", std::hex,
              static_cast<unsigned>(static_cast<uint8_t>(text[bad == std::string::npos ? 0 : bad])), std::dec,
              " at offset ", bad, ")");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<std::string> pieces;
  const auto segments = impl.added.split(text, [&](std::string& piece) { impl.normalize_text(piece); });
  for (const Segment& segment : segments) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      continue;
    }
    pieces.assign(1, segment.text);
    if (impl.pre_tokenizer) pre_tokenize(*impl.pre_tokenizer, pieces);
    for (const std::string& piece : pieces) impl.model.tokenize(piece, ids);
  }
  if (impl.post_processor) ids = post_process(*impl.post_processor, std::move(ids), add_special_tokens);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string joined;
  bool first = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    SLIME_CHECK(id >= 0, "decode (", impl.source, "): ids[", i, "] = ", id, " is not a token id");
    if (id >= impl.vocab_size || !impl.id_has_token[id]) continue;  // HF skips ids without a token
    if (skip_special_tokens && impl.id_is_special[id]) continue;
    if (impl.decoder == DecoderKind::None && !first) joined += ' ';  // no decoder: HF joins tokens with spaces
    joined += impl.decoded_bytes[id];
    first = false;
  }
  return impl.decoder == DecoderKind::ByteLevel ? utf8_lossy(joined) : joined;
}

std::optional<int32_t> Tokenizer::token_to_id(const std::string& token) const {
  const auto it = impl_->added_content_to_id.find(token);
  if (it != impl_->added_content_to_id.end()) return it->second;
  return impl_->model.token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* token = impl_->token_of(id);
  SLIME_CHECK(token != nullptr, "id_to_token (", impl_->source, "): id ", id, " is not a token id (vocab_size ",
              impl_->vocab_size, ")");
  return *token;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->id_is_special[id];
}

const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace slime::tokenizer

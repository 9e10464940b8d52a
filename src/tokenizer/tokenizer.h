// Hugging Face byte-level BPE tokenizer (Qwen2/2.5/3, Llama 3) read from tokenizer.json, encoding and decoding id
// for id like HF `tokenizers`: added tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor, and
// back through the decoder. Immutable after loading; copies share the loaded tables; safe to use from several
// threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/io.h"

namespace slime::tokenizer {

class Tokenizer {
 public:
  // Errors name the file and the field (missing file, malformed JSON, unsupported model or component type,
  // a merge naming a token missing from the vocab, ...).
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  // Same from a parsed document; `source` names it in errors (usually its path).
  static Tokenizer from_json(const json& document, const std::string& source);

  // `text` must be valid UTF-8. add_special_tokens applies the post-processor's template (e.g. a BOS token);
  // added tokens written in the text (<|im_start|>, ...) are always recognised, as in HF.
  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = true) const;
  // Invalid UTF-8 produced by the tokens is replaced by U+FFFD (HF's errors="replace"). An id with no token (the
  // padded rows of a model's vocabulary) contributes nothing, as in HF; a negative id is an error.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(const std::string& token) const;  // added token or vocab entry
  std::string id_to_token(int32_t id) const;                            // error when the id has no token
  int32_t vocab_size() const;                                           // max id + 1 over vocab and added tokens
  bool is_special(int32_t id) const;                                    // an added token marked special
  const std::string& source() const;                                    // the file it was loaded from

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace slime::tokenizer

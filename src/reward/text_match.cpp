// Text verifiers `f1`, `exact_match` and `gpqa` (see text_match.h), following slime's f1.py and gpqa.py.
#include "reward/text_match.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "core/error.h"
#include "reward/math_verify.h"
#include "reward/text_util.h"

namespace slime::reward {

// ============================================================================================================
// f1 / exact_match
// ============================================================================================================

namespace {

// Python's \w for UTF-8 text: ASCII letters, digits, '_', and (approximately) every non-ASCII character.
bool is_word_byte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || std::isalnum(u) || c == '_';
}

bool boundary_before(std::string_view text, size_t pos) { return pos == 0 || !is_word_byte(text[pos - 1]); }
bool boundary_after(std::string_view text, size_t pos) { return pos >= text.size() || !is_word_byte(text[pos]); }

// re.sub(r"\b(a|an|the)\b", " ", text), without std::regex (whose recursion overflows on long texts).
std::string remove_articles(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    if (boundary_before(text, i)) {
      for (std::string_view article : {"a", "an", "the"}) {
        if (text.substr(i, article.size()) == article && boundary_after(text, i + article.size())) {
          out.push_back(' ');
          i += article.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

std::string squad_normalize_answer(std::string_view raw) {
  static const std::string kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // Python's string.punctuation
  std::string lowered = text::lower(raw);
  std::string no_punctuation;
  for (char c : lowered)
    if (kPunctuation.find(c) == std::string::npos) no_punctuation.push_back(c);
  std::string no_articles = remove_articles(no_punctuation);
  std::string out;
  for (const auto& word : text::split_whitespace(no_articles)) {
    if (!out.empty()) out.push_back(' ');
    out += word;
  }
  return out;
}

F1Score f1_score(std::string_view prediction, std::string_view ground_truth) {
  std::string normalized_prediction = squad_normalize_answer(prediction);
  std::string normalized_truth = squad_normalize_answer(ground_truth);
  static const std::set<std::string> kSpecial = {"yes", "no", "noanswer"};
  if (kSpecial.count(normalized_prediction) && normalized_prediction != normalized_truth) return {};
  if (kSpecial.count(normalized_truth) && normalized_prediction != normalized_truth) return {};
  auto prediction_tokens = text::split_whitespace(normalized_prediction);
  auto truth_tokens = text::split_whitespace(normalized_truth);
  std::map<std::string, int> truth_counts;
  for (const auto& token : truth_tokens) ++truth_counts[token];
  int common = 0;
  for (const auto& token : prediction_tokens) {
    auto it = truth_counts.find(token);
    if (it != truth_counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return {};
  F1Score score;
  score.precision = static_cast<double>(common) / static_cast<double>(prediction_tokens.size());
  score.recall = static_cast<double>(common) / static_cast<double>(truth_tokens.size());
  score.f1 = 2 * score.precision * score.recall / (score.precision + score.recall);
  return score;
}

namespace {
// A label, or each label of an array, as text.
std::vector<std::string> label_alternatives(const nlohmann::ordered_json& label, std::string_view rm_type) {
  std::vector<std::string> alternatives;
  if (label.is_array()) {
    SLIME_CHECK(!label.empty(), "rm_type ", rm_type, ": the label is an empty array");
    for (const auto& item : label) alternatives.push_back(label_text(item, rm_type));
  } else {
    alternatives.push_back(label_text(label, rm_type));
  }
  return alternatives;
}
}  // namespace

double f1_reward(std::string_view response, const nlohmann::ordered_json& label) {
  double best = 0;
  for (const auto& truth : label_alternatives(label, "f1")) best = std::max(best, f1_score(response, truth).f1);
  return best;
}

double exact_match_reward(std::string_view response, const nlohmann::ordered_json& label) {
  std::string normalized_response = squad_normalize_answer(response);
  for (const auto& truth : label_alternatives(label, "exact_match"))
    if (squad_normalize_answer(truth) == normalized_response) return 1;
  return 0;
}

// ============================================================================================================
// gpqa
// ============================================================================================================

namespace {

std::string strip_chain_of_thought(std::string_view text) {
  size_t end = text.rfind("</think>");
  if (end == std::string_view::npos) return std::string(text);
  return std::string(text.substr(end + 8));
}

// re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
std::string normalize_choice_text(std::string_view raw) {
  std::string lowered = text::lower(raw);
  std::string out;
  bool in_gap = false;
  for (char c : lowered) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (keep) {
      out.push_back(c);
      in_gap = false;
    } else if (!in_gap) {
      out.push_back(' ');
      in_gap = true;
    }
  }
  return text::strip(out);
}

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

std::string json_as_text(const nlohmann::ordered_json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

}  // namespace

namespace {

// slime's three letter patterns, matched by hand with the same backtracking outcome as Python's re (std::regex
// recurses per character and overflows the stack on long whitespace runs). Each returns the upper-cased letter
// of a match starting at `pos`.
bool is_regex_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
size_t skip_spaces(std::string_view text, size_t pos) {
  while (pos < text.size() && is_regex_space(text[pos])) ++pos;
  return pos;
}
bool word_at(std::string_view text, size_t pos, std::string_view word) {  // case-insensitive
  if (pos + word.size() > text.size()) return false;
  for (size_t k = 0; k < word.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(text[pos + k])) != word[k]) return false;
  return true;
}
std::string upper_letter(char c) {
  return std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
}

// \s*(?:is|:)?\s*([A-Z]) with IGNORECASE, from `pos`.
std::optional<std::string> match_optional_is_then_letter(std::string_view text, size_t pos) {
  size_t after_spaces = skip_spaces(text, pos);
  if (word_at(text, after_spaces, "is")) {
    size_t letter = skip_spaces(text, after_spaces + 2);
    if (letter < text.size() && is_ascii_letter(text[letter])) return upper_letter(text[letter]);
  } else if (after_spaces < text.size() && text[after_spaces] == ':') {
    size_t letter = skip_spaces(text, after_spaces + 1);
    if (letter < text.size() && is_ascii_letter(text[letter])) return upper_letter(text[letter]);
  }
  // The optional group left empty: the letter right after the spaces (e.g. the "i" of a failed "is").
  if (after_spaces < text.size() && is_ascii_letter(text[after_spaces])) return upper_letter(text[after_spaces]);
  return std::nullopt;
}

// (?:answer|option|choice)\s*(?:is|:)?\s*([A-Z])
std::optional<std::string> match_keyword_letter(std::string_view text, size_t pos) {
  for (std::string_view keyword : {"answer", "option", "choice"})
    if (word_at(text, pos, keyword)) return match_optional_is_then_letter(text, pos + keyword.size());
  return std::nullopt;
}

// ([A-Z])\s*(?:is\s*(?:the)?\s*correct)
std::optional<std::string> match_letter_is_correct(std::string_view text, size_t pos) {
  if (pos >= text.size() || !is_ascii_letter(text[pos])) return std::nullopt;
  size_t is = skip_spaces(text, pos + 1);
  if (!word_at(text, is, "is")) return std::nullopt;
  size_t next = skip_spaces(text, is + 2);
  if (word_at(text, next, "the") && word_at(text, skip_spaces(text, next + 3), "correct"))
    return upper_letter(text[pos]);
  if (word_at(text, next, "correct")) return upper_letter(text[pos]);
  return std::nullopt;
}

// final\s*(?:answer|option)\s*(?:is|:)?\s*([A-Z])
std::optional<std::string> match_final_answer_letter(std::string_view text, size_t pos) {
  if (!word_at(text, pos, "final")) return std::nullopt;
  size_t keyword = skip_spaces(text, pos + 5);
  for (std::string_view word : {"answer", "option"})
    if (word_at(text, keyword, word)) return match_optional_is_then_letter(text, keyword + word.size());
  return std::nullopt;
}

// re.search: the match that starts leftmost.
std::optional<std::string> first_match(std::string_view text,
                                       std::optional<std::string> (*pattern)(std::string_view, size_t)) {
  for (size_t pos = 0; pos < text.size(); ++pos)
    if (auto letter = pattern(text, pos)) return letter;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> gpqa_extract_letter(std::string_view response,
                                               const std::vector<std::string>& valid_letters) {
  if (response.empty()) return std::nullopt;
  std::string text = strip_chain_of_thought(response);
  std::set<std::string> valid;
  for (const auto& letter : valid_letters) valid.insert(upper(letter));
  // Each named pattern is tried once (its first match only), as re.search does.
  for (auto pattern : {match_keyword_letter, match_letter_is_correct, match_final_answer_letter}) {
    if (auto letter = first_match(text, pattern)) {
      if (valid.count(*letter)) return *letter;
    }
  }
  // Fallback: the last standalone capital letter (\b([A-Z])\b, case-sensitive) that is valid.
  for (size_t i = text.size(); i-- > 0;) {
    if (text[i] >= 'A' && text[i] <= 'Z' && boundary_before(text, i) && boundary_after(text, i + 1)) {
      std::string letter(1, text[i]);
      if (valid.count(letter)) return letter;
    }
  }
  return std::nullopt;
}

double gpqa_reward(std::string_view response, const nlohmann::ordered_json& label,
                   const nlohmann::ordered_json& metadata_in) {
  nlohmann::ordered_json metadata = metadata_in.is_object() ? metadata_in : nlohmann::ordered_json::object();
  std::vector<std::string> choices;
  bool has_choices = false;
  if (metadata.contains("choices") && !metadata["choices"].is_null()) {
    const auto& raw = metadata["choices"];
    SLIME_CHECK(raw.is_array() || raw.is_object(), "rm_type gpqa: metadata field 'choices': expected a list or an ",
                "object, got ", raw.type_name());
    for (const auto& item : raw) choices.push_back(json_as_text(item));  // an object's values, in order
    has_choices = !choices.empty();
  }
  std::vector<std::string> valid_letters;
  const auto valid_letters_field =
      metadata.contains("valid_letters") ? metadata["valid_letters"] : nlohmann::ordered_json();
  if (valid_letters_field.is_array() && !valid_letters_field.empty()) {
    for (const auto& letter : valid_letters_field) valid_letters.push_back(upper(json_as_text(letter)));
  } else if (valid_letters_field.is_string() && !valid_letters_field.get<std::string>().empty()) {
    for (char letter : valid_letters_field.get<std::string>()) valid_letters.push_back(upper(std::string(1, letter)));
  } else {
    size_t count = has_choices ? std::min<size_t>(choices.size(), 26) : 10;  // default letters A..J
    for (size_t i = 0; i < count; ++i) valid_letters.push_back(std::string(1, static_cast<char>('A' + i)));
  }
  auto is_valid = [&](const std::string& letter) {
    return std::find(valid_letters.begin(), valid_letters.end(), letter) != valid_letters.end();
  };

  std::optional<std::string> correct_letter;
  if (metadata.contains("correct_letter") && metadata["correct_letter"].is_string()) {
    std::string letter = upper(text::strip(metadata["correct_letter"].get<std::string>()));
    if (!letter.empty()) correct_letter = letter;
  }
  std::string label_string;  // the label text when the label is a non-empty string ("" is falsy in Python)
  if (label.is_string()) {
    label_string = text::strip(label.get<std::string>());
    if (label_string.size() == 1 && is_valid(upper(label_string)) && !correct_letter)
      correct_letter = upper(label_string);
  } else if (label.is_number()) {
    long index = static_cast<long>(label.get<double>());  // int(label)
    if (index >= 0 && index < static_cast<long>(valid_letters.size())) correct_letter = valid_letters[index];
  }
  const bool has_label_text = !label_string.empty();

  if (!correct_letter && has_choices && has_label_text) {
    std::string normalized_label = normalize_choice_text(label_string);
    for (size_t i = 0; i < choices.size() && i < valid_letters.size(); ++i) {
      if (normalize_choice_text(choices[i]) == normalized_label) {
        correct_letter = valid_letters[i];
        if (!metadata.contains("correct_answer")) metadata["correct_answer"] = choices[i];
        break;
      }
    }
  }

  auto extracted = gpqa_extract_letter(response, valid_letters);
  if (extracted && correct_letter) return *extracted == *correct_letter ? 1.0 : 0.0;

  std::vector<std::string> candidate_answers;
  if (correct_letter && has_choices) {
    auto it = std::find(valid_letters.begin(), valid_letters.end(), *correct_letter);
    size_t index = static_cast<size_t>(it - valid_letters.begin());
    if (it != valid_letters.end() && index < choices.size()) candidate_answers.push_back(choices[index]);
  }
  for (const char* key : {"correct_answer", "answer_text"}) {
    if (!metadata.contains(key)) continue;
    const auto& value = metadata[key];
    bool truthy = !(value.is_null() || (value.is_string() && value.get<std::string>().empty()) ||
                    (value.is_boolean() && !value.get<bool>()) || (value.is_number() && value.get<double>() == 0));
    if (truthy) candidate_answers.push_back(json_as_text(value));
  }
  if (has_label_text) candidate_answers.push_back(label_string);

  std::string normalized_response = normalize_choice_text(strip_chain_of_thought(response));
  for (const auto& candidate : candidate_answers) {
    std::string target = normalize_choice_text(candidate);
    if (!target.empty() && normalized_response.find(target) != std::string::npos) return 1.0;
  }
  if (extracted && !correct_letter && has_label_text) return *extracted == upper(label_string) ? 1.0 : 0.0;
  return 0.0;
}

}  // namespace slime::reward

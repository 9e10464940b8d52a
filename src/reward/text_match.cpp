// Text verifiers `f1`, `exact_match` and `gpqa` (see text_match.h), following slime's f1.py and gpqa.py.
#include "reward/text_match.h"

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "reward/math_verify.h"
#include "reward/text_util.h"

namespace slime::reward {

// ============================================================================================================
// f1 / exact_match
// ============================================================================================================

std::string squad_normalize_answer(std::string_view raw) {
  static const std::string kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // Python's string.punctuation
  std::string lowered = text::lower(raw);
  std::string no_punctuation;
  for (char c : lowered)
    if (kPunctuation.find(c) == std::string::npos) no_punctuation.push_back(c);
  static const std::regex kArticles(R"(\b(a|an|the)\b)");
  std::string no_articles = std::regex_replace(no_punctuation, kArticles, " ");
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

std::optional<std::string> gpqa_extract_letter(std::string_view response, const std::vector<std::string>& valid_letters) {
  if (response.empty()) return std::nullopt;
  std::string text = strip_chain_of_thought(response);
  std::set<std::string> valid;
  for (const auto& letter : valid_letters) valid.insert(upper(letter));
  // Each named pattern is tried once (its first match only), as re.search does.
  static const std::regex kPatterns[] = {
      std::regex(R"((?:answer|option|choice)\s*(?:is|:)?\s*([A-Z]))", std::regex::icase),
      std::regex(R"(([A-Z])\s*(?:is\s*(?:the)?\s*correct))", std::regex::icase),
      std::regex(R"(final\s*(?:answer|option)\s*(?:is|:)?\s*([A-Z]))", std::regex::icase),
  };
  for (const auto& pattern : kPatterns) {
    std::smatch match;
    if (std::regex_search(text, match, pattern)) {
      std::string letter = upper(match[1].str());
      if (valid.count(letter)) return letter;
    }
  }
  static const std::regex kStandalone(R"(\b([A-Z])\b)");
  std::vector<std::string> candidates;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kStandalone); it != std::sregex_iterator(); ++it)
    candidates.push_back((*it)[1].str());
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it)
    if (valid.count(*it)) return *it;
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
  const auto valid_letters_field = metadata.contains("valid_letters") ? metadata["valid_letters"]
                                                                      : nlohmann::ordered_json();
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

// Text verifiers: `f1` (SQuAD token F1, slime's f1.py), `exact_match` (SQuAD-normalised equality) and `gpqa`
// (multiple-choice letter extraction, slime's gpqa.py).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slime::reward {

// SQuAD normalisation: lower case, ASCII punctuation removed, articles a/an/the removed, whitespace collapsed.
std::string squad_normalize_answer(std::string_view text);

struct F1Score {
  double f1 = 0;
  double precision = 0;
  double recall = 0;
};
// Token F1 of the normalised texts; "yes"/"no"/"noanswer" on either side must match exactly (else all zero).
F1Score f1_score(std::string_view prediction, std::string_view ground_truth);

// `f1` reward: the F1 against the label (a string or number; an array of those gives the best F1).
double f1_reward(std::string_view response, const nlohmann::ordered_json& label);
// `exact_match` reward: 1 when the normalised response equals the normalised label (or any label of an array).
double exact_match_reward(std::string_view response, const nlohmann::ordered_json& label);

// The option letter a response chooses ("The answer is B", "C is correct", "Final answer: D", else the last
// standalone capital letter), looking only after the last "</think>". nullopt if none is valid.
std::optional<std::string> gpqa_extract_letter(std::string_view response,
                                               const std::vector<std::string>& valid_letters);
// `gpqa` reward (1 or 0). The correct letter comes from metadata.correct_letter, a one-letter label, an integer
// label (index) or a label text matched against metadata.choices (list or object); when no letter can be read, the
// response containing the correct answer text counts.
double gpqa_reward(std::string_view response, const nlohmann::ordered_json& label,
                   const nlohmann::ordered_json& metadata);

}  // namespace slime::reward

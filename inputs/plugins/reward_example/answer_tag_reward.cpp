// Example reward plug-in (see README.md in this folder): the answer in the response's last <answer>...</answer>
// against the label, case-insensitive, with a small "format" reward for a well-formed but wrong answer (the
// TinyZero convention).
//
// It depends only on src/reward/plugin.h and nlohmann/json (header-only): nothing of slime-hpc is linked.
#include <cctype>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "reward/plugin.h"

namespace {

std::string trimmed_lower(const std::string& text) {
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  std::string out = text.substr(begin, end - begin);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The content of the last complete <answer>...</answer>; false when there is none.
bool last_answer(const std::string& response, std::string& answer) {
  size_t open = response.rfind("<answer>");
  while (open != std::string::npos) {
    size_t close = response.find("</answer>", open);
    if (close != std::string::npos) {
      answer = response.substr(open + 8, close - open - 8);
      return true;
    }
    if (open == 0) break;
    open = response.rfind("<answer>", open - 1);
  }
  return false;
}

int fail(char* error, size_t error_size, const std::string& message, int code) {
  if (error_size > 0) std::snprintf(error, error_size, "%s", message.c_str());
  return code;
}

}  // namespace

// metadata (optional): {"format_reward": 0.1} — the reward of a tagged but wrong answer.
extern "C" __attribute__((visibility("default"))) int answer_tag_reward(const char* /*prompt*/, const char* response,
                                                                        const char* label_json,
                                                                        const char* metadata_json, double* reward,
                                                                        char* error, size_t error_size) {
  try {
    nlohmann::json label = nlohmann::json::parse(label_json);
    nlohmann::json metadata = nlohmann::json::parse(metadata_json);
    std::string expected;
    if (label.is_string())
      expected = label.get<std::string>();
    else if (label.is_number())
      expected = label.dump();
    else
      return fail(error, error_size, "answer_tag_reward: the label must be a string or a number, got " + label.dump(),
                  2);
    double format_reward = 0.1;
    if (metadata.is_object() && metadata.contains("format_reward")) {
      if (!metadata["format_reward"].is_number())
        return fail(error, error_size, "answer_tag_reward: metadata field 'format_reward' must be a number", 3);
      format_reward = metadata["format_reward"].get<double>();
    }
    std::string answer;
    if (!last_answer(response, answer))
      *reward = 0.0;
    else
      *reward = trimmed_lower(answer) == trimmed_lower(expected) ? 1.0 : format_reward;
    return 0;
  } catch (const std::exception& e) {  // never let an exception cross the C ABI
    return fail(error, error_size, std::string("answer_tag_reward: ") + e.what(), 1);
  }
}

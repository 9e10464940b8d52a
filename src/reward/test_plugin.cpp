// A reward plug-in used by plugin_test.cpp, built as a MODULE library exactly the way users build theirs.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "reward/plugin.h"

namespace {
void set_error(char* error, size_t error_size, const char* message) {
  if (error_size == 0) return;
  std::snprintf(error, error_size, "%s", message);
}
}  // namespace

// 1 when the response contains the label text (a JSON string), plus 0.5 when the metadata has "bonus".
extern "C" int slime_test_reward_contains(const char* /*prompt*/, const char* response, const char* label_json,
                                          const char* metadata_json, double* reward, char* error, size_t error_size) {
  std::string label = label_json;
  if (label == "null") {
    set_error(error, error_size, "the label is null; this plug-in needs a string label");
    return 7;
  }
  if (label.size() < 2 || label.front() != '"' || label.back() != '"') {
    set_error(error, error_size, "expected a JSON string label");
    return 2;
  }
  std::string needle = label.substr(1, label.size() - 2);
  *reward = std::strstr(response, needle.c_str()) != nullptr ? 1.0 : 0.0;
  if (std::strstr(metadata_json, "\"bonus\"") != nullptr) *reward += 0.5;
  return 0;
}

extern "C" int slime_test_reward_nan(const char*, const char*, const char*, const char*, double* reward, char*,
                                     size_t) {
  *reward = std::nan("");
  return 0;
}

// Fails with a message far longer than any buffer, written within error_size as the ABI asks.
extern "C" int slime_test_reward_long_error(const char*, const char*, const char*, const char*, double*, char* error,
                                            size_t error_size) {
  std::string message(5000, 'e');
  set_error(error, error_size, message.c_str());
  return 1;
}

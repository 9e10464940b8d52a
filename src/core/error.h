// Errors and checks. Every failure carries its context: what was being read, what was expected, what was found.
//   SLIME_CHECK(cond, parts...)  user-facing: bad input, bad option, bad file. Throws slime::Error(message).
//   SLIME_ASSERT(cond, parts...) internal invariant: a bug in slime-hpc. The message names the source line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace slime {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates anything streamable: cat("layer ", 3, ": expected ", 4, " got ", 5).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

[[noreturn]] void throw_error(const std::string& message);
[[noreturn]] void throw_internal(const char* file, int line, const std::string& message);

}  // namespace slime

#define SLIME_CHECK(cond, ...)                                  \
  do {                                                          \
    if (!(cond)) ::slime::throw_error(::slime::cat(__VA_ARGS__)); \
  } while (0)

#define SLIME_FAIL(...) ::slime::throw_error(::slime::cat(__VA_ARGS__))

#define SLIME_ASSERT(cond, ...)                                                                  \
  do {                                                                                           \
    if (!(cond))                                                                                 \
      ::slime::throw_internal(__FILE__, __LINE__, ::slime::cat("assertion `" #cond "` failed: ", \
                                                               ##__VA_ARGS__));                  \
  } while (0)

#include "core/error.h"

namespace slime {

void throw_error(const std::string& message) { throw Error(message); }

void throw_internal(const char* file, int line, const std::string& message) {
  throw Error(cat("internal error at ", file, ":", line, ": ", message));
}

}  // namespace slime

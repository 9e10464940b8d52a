#include "core/shared_library.h"

#include <dlfcn.h>

#include "core/error.h"
#include "core/io.h"

namespace slime {

LibrarySpec parse_library_spec(const std::string& spec, const std::string& option) {
  const std::string where = cat(option, " '", spec, "'");
  const size_t colon = spec.rfind(':');
  SLIME_CHECK(colon != std::string::npos, where, ": expected 'path/to/lib.so:symbol', found no ':'");
  LibrarySpec s{spec.substr(0, colon), spec.substr(colon + 1)};
  SLIME_CHECK(!s.path.empty() && !s.symbol.empty(), where, ": expected 'path/to/lib.so:symbol', the ",
              s.path.empty() ? "library path" : "symbol", " is empty");
  return s;
}

SharedLibrary SharedLibrary::open(const std::string& path, const std::string& option) {
  SLIME_CHECK(path_exists(path), option, ": plug-in library '", path, "' not found");
  // A name without '/' would make dlopen search the library path instead of opening this file.
  const std::string open_path = path.find('/') == std::string::npos ? "./" + path : path;
  dlerror();
  void* handle = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    SLIME_FAIL(option, ": cannot load '", path, "': ", why != nullptr ? why : "dlopen failed");
  }
  SharedLibrary lib;
  lib.path_ = path;
  lib.handle_ = std::shared_ptr<void>(handle, [](void* h) { dlclose(h); });
  return lib;
}

void* SharedLibrary::find(const std::string& symbol) const {
  return handle_ ? dlsym(handle_.get(), symbol.c_str()) : nullptr;
}

void* SharedLibrary::require(const std::string& symbol, const std::string& option) const {
  void* address = find(symbol);
  SLIME_CHECK(address != nullptr, option, ": symbol '", symbol, "' not found in '", path_,
              "' (is it exported as extern \"C\" with default visibility?)");
  return address;
}

}  // namespace slime

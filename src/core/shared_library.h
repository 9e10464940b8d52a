// Plug-in shared libraries named on the command line as "path/to/lib.so:symbol" (slime's "module.path:function"
// options: --custom-generate-function-path, --custom-rm-path, --dynamic-sampling-filter-path, ...).
#pragma once

#include <memory>
#include <string>

namespace slime {

struct LibrarySpec {
  std::string path;    // the library file
  std::string symbol;  // the exported C symbol
};

// Splits at the last ':' (a path may hold ':' itself). `option` names the flag in errors: no ':', an empty side.
LibrarySpec parse_library_spec(const std::string& spec, const std::string& option);

// A dlopen'ed library (RTLD_NOW | RTLD_LOCAL), closed when the last copy goes.
class SharedLibrary {
 public:
  // Errors name `option`: the file missing, dlopen failing (with dlerror's text).
  static SharedLibrary open(const std::string& path, const std::string& option);
  // The symbol's address; nullptr when absent.
  void* find(const std::string& symbol) const;
  // The symbol's address; an error naming `option`, the file and the symbol when absent.
  void* require(const std::string& symbol, const std::string& option) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<void> handle_;
};

}  // namespace slime

// Shared by the src/obs tests: a fresh temporary directory per test case.
#pragma once

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <system_error>

#include "core/io.h"

namespace slime::obs::testing {

// A fresh directory /tmp/slime_obs_test_<name>.XXXXXX, removed with everything in it when the test case ends.
struct TempDir {
  std::string path;
  explicit TempDir(const char* name) : path(std::string("/tmp/slime_obs_test_") + name + ".XXXXXX") {
    REQUIRE(::mkdtemp(path.data()) != nullptr);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  // Writes `text` to <path>/<name> and returns the file's path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = slime::path_join(path, name);
    slime::write_file_atomic(file, text);
    return file;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace slime::obs::testing

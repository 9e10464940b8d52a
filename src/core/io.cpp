#include "core/io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace slime {
namespace {

const json& field(const json& object, const std::string& key, const std::string& where) {
  SLIME_CHECK(object.is_object(), where, ": expected a JSON object, got ", json_type_name(object));
  auto it = object.find(key);
  SLIME_CHECK(it != object.end(), where, ": missing field '", key, "'");
  return *it;
}

}  // namespace

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (!b.empty() && b[0] == '/') return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

void make_directories(const std::string& path) {
  if (path.empty() || is_directory(path)) return;
  const size_t slash = path.find_last_of('/', path.size() > 1 ? path.size() - 2 : 0);
  if (slash != std::string::npos && slash > 0) make_directories(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    SLIME_FAIL(path, ": cannot create directory: ", std::strerror(errno));
  SLIME_CHECK(is_directory(path), path, ": exists and is not a directory");
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SLIME_CHECK(in, path, ": cannot open: ", std::strerror(errno));
  std::string contents(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  SLIME_CHECK(in.gcount() == static_cast<std::streamsize>(contents.size()), path, ": read error");
  return contents;
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    SLIME_CHECK(out, tmp, ": cannot create: ", std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    SLIME_CHECK(out.good(), tmp, ": write failed");
  }
  SLIME_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "rename ", tmp, " -> ", path, ": ",
              std::strerror(errno));
}

json read_json_file(const std::string& path) {
  std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    SLIME_FAIL(path, ": malformed JSON: ", e.what());
  }
}

bool json_has(const json& object, const std::string& key) {
  return object.is_object() && object.contains(key) && !object.at(key).is_null();
}

int64_t json_int(const json& object, const std::string& key, const std::string& where) {
  const json& v = field(object, key, where);
  if (v.is_number_float()) {
    double d = v.get<double>();
    SLIME_CHECK(d == static_cast<double>(static_cast<int64_t>(d)), where, ": field '", key,
                "': expected integer, got ", d);
    return static_cast<int64_t>(d);
  }
  SLIME_CHECK(v.is_number_integer() || v.is_number_unsigned(), where, ": field '", key,
              "': expected integer, got ", json_type_name(v));
  return v.get<int64_t>();
}

int64_t json_int_or(const json& object, const std::string& key, int64_t fallback, const std::string& where) {
  return json_has(object, key) ? json_int(object, key, where) : fallback;
}

double json_number(const json& object, const std::string& key, const std::string& where) {
  const json& v = field(object, key, where);
  SLIME_CHECK(v.is_number(), where, ": field '", key, "': expected number, got ", json_type_name(v));
  return v.get<double>();
}

double json_number_or(const json& object, const std::string& key, double fallback, const std::string& where) {
  return json_has(object, key) ? json_number(object, key, where) : fallback;
}

bool json_bool_or(const json& object, const std::string& key, bool fallback, const std::string& where) {
  if (!json_has(object, key)) return fallback;
  const json& v = object.at(key);
  SLIME_CHECK(v.is_boolean(), where, ": field '", key, "': expected boolean, got ", json_type_name(v));
  return v.get<bool>();
}

std::string json_string(const json& object, const std::string& key, const std::string& where) {
  const json& v = field(object, key, where);
  SLIME_CHECK(v.is_string(), where, ": field '", key, "': expected string, got ", json_type_name(v));
  return v.get<std::string>();
}

std::string json_string_or(const json& object, const std::string& key, const std::string& fallback,
                           const std::string& where) {
  return json_has(object, key) ? json_string(object, key, where) : fallback;
}

}  // namespace slime

// File helpers with errors that name the file: whole-file reads, atomic writes, JSON documents and fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace slime {

using json = nlohmann::json;

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);
// mkdir -p: creates `path` and any missing parents; an error names the directory that could not be made.
void make_directories(const std::string& path);
std::string read_text_file(const std::string& path);
// Writes to `path.tmp.<pid>` then renames over `path`, so readers never see half a file.
void write_file_atomic(const std::string& path, const std::string& contents);

// "null", "boolean", "integer", "number", "string", "array" or "object" (for error messages); works for json and
// ordered_json.
template <class Json>
const char* json_type_name(const Json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "boolean";
  if (value.is_number_integer() || value.is_number_unsigned()) return "integer";
  if (value.is_number_float()) return "number";
  if (value.is_string()) return "string";
  if (value.is_array()) return "array";
  return "object";
}

// Parses a JSON file; malformed JSON -> "<path>: malformed JSON: <parser message>".
json read_json_file(const std::string& path);

// Typed field access with errors of the form "<where>: field 'hidden_size': expected integer, got string".
// `where` names the document (usually its path).
bool json_has(const json& object, const std::string& key);
int64_t json_int(const json& object, const std::string& key, const std::string& where);
int64_t json_int_or(const json& object, const std::string& key, int64_t fallback, const std::string& where);
double json_number(const json& object, const std::string& key, const std::string& where);
double json_number_or(const json& object, const std::string& key, double fallback, const std::string& where);
bool json_bool_or(const json& object, const std::string& key, bool fallback, const std::string& where);
std::string json_string(const json& object, const std::string& key, const std::string& where);
std::string json_string_or(const json& object, const std::string& key, const std::string& fallback,
                           const std::string& where);

}  // namespace slime

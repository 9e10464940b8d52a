// Parsing of slime-train's command line and YAML config, JSON export/import, --help text, the Markdown option
// reference and the Megatron-style argument summary, all driven by the option table (args_options.cpp).
// Command-line syntax: `--flag value`, `--flag=value`, lists take values up to the next token starting with
// `--` (so negative numbers are values), bool flags take no value, `--no-x` twins for BooleanOptional options.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "core/args.h"
#include "core/args_registry.h"
#include "core/error.h"

namespace slime {

using args_detail::FieldRef;
using args_detail::OptionSpec;
using args_detail::Style;

namespace {

// ---- the table, indexed -------------------------------------------------------------------------------

struct FlagHit {
  const OptionSpec* spec = nullptr;
  bool negated = false;  // the --no-x twin of a BoolPair option
};

const std::map<std::string, FlagHit>& flag_index() {
  static const std::map<std::string, FlagHit> index = [] {
    std::map<std::string, FlagHit> out;
    for (const auto& spec : args_detail::option_table()) {
      out[spec.flag] = FlagHit{&spec, false};
      if (spec.style == Style::BoolPair) {
        std::string twin = "--no-" + spec.flag.substr(2);
        SLIME_ASSERT(!out.count(twin), "twin flag ", twin, " collides");
        out[twin] = FlagHit{&spec, true};
      }
    }
    return out;
  }();
  return index;
}

const std::map<std::string, const OptionSpec*>& field_index() {
  static const std::map<std::string, const OptionSpec*> index = [] {
    std::map<std::string, const OptionSpec*> out;
    for (const auto& spec : args_detail::option_table()) out[spec.field] = &spec;
    return out;
  }();
  return index;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string replace_all(std::string s, char from, char to) {
  std::replace(s.begin(), s.end(), from, to);
  return s;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The registered flag nearest to `flag` ("--foo-bar"), or "" when none is close.
std::string suggest_flag(const std::string& flag) {
  std::string dashed = replace_all(flag, '_', '-');
  if (flag_index().count(dashed)) return dashed;
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& entry : flag_index()) {
    size_t d = edit_distance(dashed, entry.first);
    if (d < best_distance) best_distance = d, best = entry.first;
  }
  size_t name_length = dashed.size() > 2 ? dashed.size() - 2 : dashed.size();
  if (best_distance <= 2 || best_distance * 3 <= name_length) return best;
  // A truncated flag (argparse accepts abbreviations; we do not): suggest the option it starts.
  for (const auto& entry : flag_index())
    if (dashed.size() > 4 && starts_with(entry.first, dashed)) return entry.first;
  return "";
}

const args_detail::OmittedOption* find_omitted(const std::string& flag) {
  for (const auto& omitted : args_detail::omitted_options()) {
    bool family = omitted.prefix.back() == '-';
    if (family ? starts_with(flag, omitted.prefix) : flag == omitted.prefix) return &omitted;
  }
  return nullptr;
}

// "unknown option --x (did you mean --y?)", with the reason for options slime-hpc leaves out on purpose.
// `as_key` formats for a YAML/JSON key ("unknown option 'x'").
std::string unknown_option_message(const std::string& flag, const std::string& shown) {
  std::string message = cat("unknown option ", shown);
  if (const auto* omitted = find_omitted(flag)) return cat(message, ": ", omitted->reason);
  std::string suggestion = suggest_flag(flag);
  if (starts_with(flag, "--sglang-")) {
    std::string known;
    for (const auto& spec : args_detail::option_table())
      if (starts_with(spec.flag, "--sglang-")) known += (known.empty() ? "" : ", ") + spec.flag;
    message += ": the rollout engine has no such option";
    if (!suggestion.empty() && starts_with(suggestion, "--sglang-")) message += cat(" (did you mean ", suggestion, "?)");
    return cat(message, "; its options are ", known);
  }
  if (!suggestion.empty()) message += cat(" (did you mean ", suggestion, "?)");
  return message;
}

// ---- values -------------------------------------------------------------------------------------------

std::string format_double(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".e") == std::string::npos) text += ".0";  // Python's repr: 1.0, not 1
  return text;
}

int64_t parse_integer(const std::string& text, const std::string& where) {
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  SLIME_CHECK(!text.empty() && end && *end == '\0', where, ": expected an integer, got '", text, "'");
  SLIME_CHECK(errno != ERANGE, where, ": integer out of range: '", text, "'");
  return value;
}

double parse_number(const std::string& text, const std::string& where) {
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  SLIME_CHECK(!text.empty() && end && *end == '\0' && !std::isnan(value), where, ": expected a number, got '", text,
              "'");
  SLIME_CHECK(errno != ERANGE || value == 0.0 || std::isfinite(value), where, ": number out of range: '", text, "'");
  return value;
}

bool parse_bool(const std::string& text, const std::string& where) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  SLIME_FAIL(where, ": expected true or false, got '", text, "'");
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

void check_string_value(const OptionSpec& spec, const std::string& value, const std::string& where) {
  if (!spec.choices.empty()) {
    bool allowed = std::find(spec.choices.begin(), spec.choices.end(), value) != spec.choices.end();
    SLIME_CHECK(allowed, where, ": expected one of ", join(spec.choices, "|"), ", got '", value, "'");
  }
  if (spec.style == Style::JsonObject) {
    json parsed;
    try {
      parsed = json::parse(value);
    } catch (const json::exception& e) {
      SLIME_FAIL(where, ": expected a JSON object, got '", value, "' (", e.what(), ")");
    }
    SLIME_CHECK(parsed.is_object(), where, ": expected a JSON object, got '", value, "'");
  }
}

bool is_bool_field(const OptionSpec& spec) {
  return std::holds_alternative<bool Args::*>(spec.ref) ||
         std::holds_alternative<std::optional<bool> Args::*>(spec.ref);
}

bool is_list_field(const OptionSpec& spec) {
  return std::holds_alternative<std::vector<std::string> Args::*>(spec.ref) ||
         std::holds_alternative<std::vector<int64_t> Args::*>(spec.ref);
}

// What a value of this option must look like, for "expected ..." messages.
const char* expected_kind(const OptionSpec& spec) {
  const FieldRef& ref = spec.ref;
  if (is_bool_field(spec)) return "true or false";
  if (std::holds_alternative<int64_t Args::*>(ref) || std::holds_alternative<std::optional<int64_t> Args::*>(ref))
    return "an integer";
  if (std::holds_alternative<double Args::*>(ref) || std::holds_alternative<std::optional<double> Args::*>(ref))
    return "a number";
  if (std::holds_alternative<std::vector<int64_t> Args::*>(ref)) return "a list of integers";
  if (std::holds_alternative<std::vector<std::string> Args::*>(ref)) return "a list of strings";
  return "a string";
}

// Sets a single-valued, non-bool option from its text.
void set_from_text(Args& args, const OptionSpec& spec, const std::string& text, const std::string& where) {
  std::visit(
      [&](auto member) {
        using Field = std::decay_t<decltype(args.*member)>;
        if constexpr (std::is_same_v<Field, int64_t> || std::is_same_v<Field, std::optional<int64_t>>) {
          args.*member = parse_integer(text, where);
        } else if constexpr (std::is_same_v<Field, double> || std::is_same_v<Field, std::optional<double>>) {
          args.*member = parse_number(text, where);
        } else if constexpr (std::is_same_v<Field, std::string> || std::is_same_v<Field, std::optional<std::string>>) {
          check_string_value(spec, text, where);
          args.*member = text;
        } else {
          SLIME_ASSERT(false, spec.flag, " is not a single-valued option");
        }
      },
      spec.ref);
}

// Sets (append = false) or extends a list option from its texts.
void set_list(Args& args, const OptionSpec& spec, const std::vector<std::string>& texts, bool append,
              const std::string& where) {
  if (auto member = std::get_if<std::vector<std::string> Args::*>(&spec.ref)) {
    auto& list = args.**member;
    if (!append) list.clear();
    for (const auto& text : texts) {
      check_string_value(spec, text, where);
      list.push_back(text);
    }
  } else {
    auto& list = args.*std::get<std::vector<int64_t> Args::*>(spec.ref);
    if (!append) list.clear();
    for (const auto& text : texts) list.push_back(parse_integer(text, where));
  }
}

void set_bool(Args& args, const OptionSpec& spec, bool value) {
  if (auto member = std::get_if<bool Args::*>(&spec.ref))
    args.**member = value;
  else
    args.*std::get<std::optional<bool> Args::*>(spec.ref) = value;
}

// Resets an option to None (YAML `~`, JSON null). Only options whose default is None accept it.
void set_none(Args& args, const OptionSpec& spec, const std::string& where) {
  std::visit(
      [&](auto member) {
        using Field = std::decay_t<decltype(args.*member)>;
        if constexpr (std::is_same_v<Field, std::optional<bool>> || std::is_same_v<Field, std::optional<int64_t>> ||
                      std::is_same_v<Field, std::optional<double>> ||
                      std::is_same_v<Field, std::optional<std::string>>) {
          args.*member = std::nullopt;
        } else if constexpr (std::is_same_v<Field, std::vector<std::string>> ||
                             std::is_same_v<Field, std::vector<int64_t>>) {
          (args.*member).clear();
        } else {
          SLIME_FAIL(where, ": expected ", expected_kind(spec), ", got null");
        }
      },
      spec.ref);
}

// The value of an option as Python would print it (True, None, 1e-06, ['a', 'b']).
std::string value_text(const Args& args, const OptionSpec& spec) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& value = args.*member;
        using Field = std::decay_t<decltype(value)>;
        auto scalar = [](const auto& v) -> std::string {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) return v ? "True" : "False";
          else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(v);
          else if constexpr (std::is_same_v<T, double>) return format_double(v);
          else return v;
        };
        if constexpr (std::is_same_v<Field, std::vector<std::string>> || std::is_same_v<Field, std::vector<int64_t>>) {
          if (value.empty()) return spec.style == Style::Append ? "[]" : "None";
          std::vector<std::string> items;
          for (const auto& item : value) {
            if constexpr (std::is_same_v<Field, std::vector<std::string>>) items.push_back("'" + item + "'");
            else items.push_back(std::to_string(item));
          }
          return "[" + join(items, ", ") + "]";
        } else if constexpr (std::is_same_v<Field, std::optional<bool>> ||
                             std::is_same_v<Field, std::optional<int64_t>> ||
                             std::is_same_v<Field, std::optional<double>> ||
                             std::is_same_v<Field, std::optional<std::string>>) {
          return value ? scalar(*value) : "None";
        } else {
          return scalar(value);
        }
      },
      spec.ref);
}

// ---- command line -------------------------------------------------------------------------------------

bool is_option_token(const std::string& token) { return starts_with(token, "--") && token.size() > 2; }

// Finds --config FILE / --config=FILE; at most one.
std::optional<std::string> find_config(const std::vector<std::string>& argv) {
  std::optional<std::string> path;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string found;
    if (argv[i] == "--config") {
      SLIME_CHECK(i + 1 < argv.size() && !is_option_token(argv[i + 1]), "--config: missing value (a YAML file)");
      found = argv[++i];
    } else if (starts_with(argv[i], "--config=")) {
      found = argv[i].substr(9);
      SLIME_CHECK(!found.empty(), "--config: missing value (a YAML file)");
    } else {
      continue;
    }
    SLIME_CHECK(!path, "--config given twice ('", *path, "' and '", found, "'): one config file is allowed");
    path = found;
  }
  return path;
}

void apply_command_line(Args& args, const std::vector<std::string>& argv) {
  std::set<const OptionSpec*> appended;  // Append options whose config-file value the command line replaced
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& token = argv[i];
    if (!is_option_token(token)) {
      // "-lr 1e-6": a single-dash word that is not a number was meant as an option.
      bool single_dash_word = token.size() > 1 && token[0] == '-' && token[1] != '-' &&
                              !std::isdigit(static_cast<unsigned char>(token[1])) && token[1] != '.';
      if (single_dash_word) {
        std::string suggestion = suggest_flag("-" + token);
        SLIME_FAIL("unknown option ", token, " (options start with --",
                   suggestion.empty() ? "" : cat("; did you mean ", suggestion, "?"), ")");
      }
      SLIME_FAIL("unexpected argument '", token, "': values must follow an option (options start with --)");
    }
    size_t eq = token.find('=');
    std::string flag = token.substr(0, eq);
    std::optional<std::string> inline_value;
    if (eq != std::string::npos) inline_value = token.substr(eq + 1);
    if (flag == "--config") {  // read before the command line
      if (!inline_value) ++i;
      continue;
    }
    auto hit = flag_index().find(flag);
    SLIME_CHECK(hit != flag_index().end(), unknown_option_message(flag, flag));
    const OptionSpec& spec = *hit->second.spec;

    if (is_bool_field(spec)) {
      SLIME_CHECK(!inline_value, flag, " is a flag and takes no value, got '", *inline_value, "'");
      bool inverted = (spec.style == Style::StoreFalse) != hit->second.negated;
      set_bool(args, spec, !inverted);
      continue;
    }
    std::vector<std::string> values;
    if (inline_value) {
      values.push_back(*inline_value);
    } else if (is_list_field(spec) && spec.style != Style::Append) {
      while (i + 1 < argv.size() && !is_option_token(argv[i + 1])) values.push_back(argv[++i]);
    } else if (i + 1 < argv.size() && !is_option_token(argv[i + 1])) {
      values.push_back(argv[++i]);
    }
    SLIME_CHECK(!values.empty() || spec.style == Style::ZeroOrMore, flag, ": missing value (expected ",
                expected_kind(spec), ")");
    if (is_list_field(spec)) {
      bool append = spec.style == Style::Append && !appended.insert(&spec).second;
      set_list(args, spec, values, append, flag);
    } else {
      set_from_text(args, spec, values[0], flag);
    }
  }
}

// ---- YAML ---------------------------------------------------------------------------------------------

const char* yaml_kind(const YAML::Node& node) {
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  if (node.IsNull()) return "null";
  return "a scalar";
}

void apply_yaml_value(Args& args, const OptionSpec& spec, bool flag_semantics, bool negated, const YAML::Node& node,
                      const std::string& where) {
  if (node.IsNull()) return set_none(args, spec, where);
  if (is_bool_field(spec)) {
    SLIME_CHECK(node.IsScalar(), where, ": expected true or false, got ", yaml_kind(node));
    bool value = parse_bool(node.Scalar(), where);
    bool inverted = flag_semantics && ((spec.style == Style::StoreFalse) != negated);
    return set_bool(args, spec, value != inverted);
  }
  if (is_list_field(spec)) {
    std::vector<std::string> texts;
    if (node.IsScalar()) {
      texts.push_back(node.Scalar());
    } else {
      SLIME_CHECK(node.IsSequence(), where, ": expected ", expected_kind(spec), ", got ", yaml_kind(node));
      for (const auto& item : node) {
        SLIME_CHECK(item.IsScalar(), where, ": expected ", expected_kind(spec), ", got a list holding ",
                    yaml_kind(item));
        texts.push_back(item.Scalar());
      }
    }
    return set_list(args, spec, texts, false, where);
  }
  SLIME_CHECK(node.IsScalar(), where, ": expected ", expected_kind(spec), ", got ", yaml_kind(node));
  set_from_text(args, spec, node.Scalar(), where);
}

}  // namespace

// ---- public -------------------------------------------------------------------------------------------

void apply_yaml_config(Args& args, const std::string& path) {
  std::string text = read_text_file(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SLIME_FAIL(path, ": malformed YAML: ", e.what());
  }
  if (root.IsNull()) return;  // an empty file
  SLIME_CHECK(root.IsMap(), path, ": expected a mapping of option: value at the top level, got ", yaml_kind(root));
  for (const auto& item : root) {
    SLIME_CHECK(item.first.IsScalar(), path, ": option names must be plain strings");
    const std::string key = item.first.Scalar();
    std::string where = cat(path, ": option '", key, "'");
    // An option name (dashes or underscores) behaves like the flag; a field name sets the field directly
    // (so `grpo_std_normalization: false` and `disable-grpo-std-normalization: true` mean the same).
    auto hit = flag_index().find("--" + replace_all(key, '_', '-'));
    if (hit != flag_index().end()) {
      apply_yaml_value(args, *hit->second.spec, true, hit->second.negated, item.second, where);
      continue;
    }
    auto field = field_index().find(replace_all(key, '-', '_'));
    if (field != field_index().end()) {
      apply_yaml_value(args, *field->second, false, false, item.second, where);
      continue;
    }
    std::string flag = "--" + replace_all(key, '_', '-');
    std::string message = unknown_option_message(flag, "'" + key + "'");
    SLIME_FAIL(path, ": ", message);
  }
}

ParsedArgs parse_args(const std::vector<std::string>& argv) {
  ParsedArgs parsed;
  for (const auto& token : argv) {
    if (token == "--help" || token == "-h") {
      parsed.help_requested = true;
      return parsed;
    }
  }
  parsed.config_path = find_config(argv);
  if (parsed.config_path) apply_yaml_config(parsed.args, *parsed.config_path);
  apply_command_line(parsed.args, argv);
  return parsed;
}

bool use_critic(const Args& args) { return args.advantage_estimator == "ppo"; }

json args_to_json(const Args& args) {
  json out = json::object();
  for (const auto& spec : args_detail::option_table()) {
    std::visit(
        [&](auto member) {
          const auto& value = args.*member;
          using Field = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<Field, std::optional<bool>> || std::is_same_v<Field, std::optional<int64_t>> ||
                        std::is_same_v<Field, std::optional<double>> ||
                        std::is_same_v<Field, std::optional<std::string>>) {
            out[spec.field] = value ? json(*value) : json(nullptr);
          } else {
            out[spec.field] = value;
          }
        },
        spec.ref);
  }
  return out;
}

Args args_from_json(const json& j) {
  const std::string where_doc = "args JSON";
  SLIME_CHECK(j.is_object(), where_doc, ": expected an object of option: value, got ", j.type_name());
  Args args;
  for (const auto& item : j.items()) {
    auto found = field_index().find(item.key());
    if (found == field_index().end()) {
      std::string message = unknown_option_message("--" + replace_all(item.key(), '_', '-'), "'" + item.key() + "'");
      SLIME_FAIL(where_doc, ": ", message);
    }
    const OptionSpec& spec = *found->second;
    const json& value = item.value();
    std::string where = cat(where_doc, ": option '", item.key(), "'");
    if (value.is_null()) {
      set_none(args, spec, where);
      continue;
    }
    auto expect = [&](bool ok) {
      SLIME_CHECK(ok, where, ": expected ", expected_kind(spec), ", got ", value.type_name(), " ", value.dump());
    };
    std::visit(
        [&](auto member) {
          using Field = std::decay_t<decltype(args.*member)>;
          if constexpr (std::is_same_v<Field, bool> || std::is_same_v<Field, std::optional<bool>>) {
            expect(value.is_boolean());
            args.*member = value.get<bool>();
          } else if constexpr (std::is_same_v<Field, int64_t> || std::is_same_v<Field, std::optional<int64_t>>) {
            expect(value.is_number_integer());
            args.*member = value.get<int64_t>();
          } else if constexpr (std::is_same_v<Field, double> || std::is_same_v<Field, std::optional<double>>) {
            expect(value.is_number());
            args.*member = value.get<double>();
          } else if constexpr (std::is_same_v<Field, std::string> ||
                               std::is_same_v<Field, std::optional<std::string>>) {
            expect(value.is_string());
            check_string_value(spec, value.get<std::string>(), where);
            args.*member = value.get<std::string>();
          } else if constexpr (std::is_same_v<Field, std::vector<std::string>>) {
            expect(value.is_array() && std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_string(); }));
            args.*member = value.get<std::vector<std::string>>();
          } else {
            expect(value.is_array() &&
                   std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_number_integer(); }));
            args.*member = value.get<std::vector<int64_t>>();
          }
        },
        spec.ref);
  }
  return args;
}

// ---- help ---------------------------------------------------------------------------------------------

namespace {

std::string metavar(const OptionSpec& spec) {
  if (is_bool_field(spec)) return "";
  std::string unit = spec.choices.empty() ? "" : "{" + join(spec.choices, ",") + "}";
  if (unit.empty()) {
    const FieldRef& ref = spec.ref;
    if (spec.style == Style::JsonObject) unit = "JSON";
    else if (std::holds_alternative<int64_t Args::*>(ref) || std::holds_alternative<std::optional<int64_t> Args::*>(ref) ||
             std::holds_alternative<std::vector<int64_t> Args::*>(ref))
      unit = "INT";
    else if (std::holds_alternative<double Args::*>(ref) || std::holds_alternative<std::optional<double> Args::*>(ref))
      unit = "FLOAT";
    else
      unit = "STR";
  }
  if (spec.style == Style::ZeroOrMore) return "[" + unit + " ...]";
  if (is_list_field(spec) && spec.style != Style::Append) return unit + " [" + unit + " ...]";
  return unit;
}

// "--offload-train, --no-offload-train" or "--lr FLOAT".
std::string usage_text(const OptionSpec& spec) {
  if (spec.style == Style::BoolPair) return spec.flag + ", --no-" + spec.flag.substr(2);
  std::string mv = metavar(spec);
  return mv.empty() ? spec.flag : spec.flag + " " + mv;
}

std::string default_text(const OptionSpec& spec) {
  if (!spec.default_note.empty()) return spec.default_note;
  static const Args defaults;
  std::string text = value_text(defaults, spec);
  if (spec.style == Style::StoreFalse) return cat("off (", spec.field, " = ", text, ")");
  if (spec.group == "model" && text == "None") return "None (from config.json)";
  return text;
}

std::string wrap(const std::string& text, size_t indent, size_t width) {
  std::istringstream words(text);
  std::string word, out, line;
  std::string pad(indent, ' ');
  while (words >> word) {
    if (!line.empty() && pad.size() + line.size() + 1 + word.size() > width) {
      out += pad + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += pad + line + "\n";
  return out;
}

std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

constexpr const char* kIntro =
    "slime-train: RL post-training of LLMs (slime's algorithms; Megatron-style trainer and an SGLang-style rollout "
    "engine in one MPI program).";
constexpr const char* kSyntax =
    "Options keep slime's names and defaults; training options keep Megatron's; rollout-engine options take the "
    "--sglang- prefix and router options --router-. `--config FILE.yaml` reads options from a YAML mapping (keys are "
    "option names with dashes or underscores; bool flags take true/false); the command line overrides it. List "
    "options take values up to the next --option. Options whose default is None are unset unless given; some get a "
    "derived value, shown as (-> ...). Hook options (...-path) take a built-in name (slime's Python path of the "
    "function) or a plugin `path/to/plugin.so:symbol`.";

}  // namespace

std::string format_help() {
  std::string out = cat("usage: slime-train [--config FILE.yaml] [--help] [--OPTION VALUE ...]\n\n", wrap(kIntro, 0, 100),
                        "\n", wrap(kSyntax, 0, 100));
  for (const auto& group : args_detail::option_groups()) {
    out += "\n" + group + ":\n";
    for (const auto& spec : args_detail::option_table()) {
      if (spec.group != group) continue;
      out += "  " + usage_text(spec) + "\n";
      // '\x01' keeps "[default:" and the first word of the value on one line; restored after wrapping.
      std::string text = wrap(cat(spec.help, " [default:\x01", default_text(spec), "]"), 8, 100);
      out += replace_all(text, '\x01', ' ');
    }
  }
  return out;
}

std::string format_help_markdown() {
  std::string out = cat("# slime-train options\n\n", kIntro, "\n\n", kSyntax, "\n\n",
                        "Generated from the option table (`src/core/args_options.cpp`); do not edit by hand.\n");
  for (const auto& group : args_detail::option_groups()) {
    out += "\n## " + group + "\n\n| Option | Value | Default | Description |\n|---|---|---|---|\n";
    for (const auto& spec : args_detail::option_table()) {
      if (spec.group != group) continue;
      std::string option = "`" + spec.flag + "`";
      if (spec.style == Style::BoolPair) option += " / `--no-" + spec.flag.substr(2) + "`";
      std::string value = metavar(spec);
      if (spec.style == Style::Append) value += " (repeatable)";
      out += cat("| ", option, " | ", value.empty() ? "flag" : markdown_cell(value), " | `",
                 markdown_cell(default_text(spec)), "` | ", markdown_cell(spec.help), " |\n");
    }
  }
  return out;
}

std::string format_args_summary(const Args& args) {
  std::vector<const OptionSpec*> specs;
  for (const auto& spec : args_detail::option_table()) specs.push_back(&spec);
  std::sort(specs.begin(), specs.end(), [](const OptionSpec* a, const OptionSpec* b) { return a->field < b->field; });
  std::string out = "------------------------ arguments ------------------------\n";
  for (const OptionSpec* spec : specs) {
    std::string dots(spec->field.size() < 48 ? 48 - spec->field.size() : 0, '.');
    out += cat("  ", spec->field, " ", dots, " ", value_text(args, *spec), "\n");
  }
  out += "-------------------- end of arguments ---------------------\n";
  return out;
}

}  // namespace slime

// Jinja2's builtin filters and tests, with the tojson override transformers installs for chat templates
// (json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)). Each follows the
// corresponding function of jinja2's filters.py / tests.py: same parameters (positional or keyword), same defaults
// (e.g. sort/unique/dictsort compare strings case-insensitively unless case_sensitive=True), same treatment of
// Undefined (length 0, iterates as empty, `default` replaces it). Generators (map, select, ...) become lists.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace slime::jinja {
namespace {

using FilterFn = Value (*)(Interpreter&, Value&, CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

int64_t int_param(const Value& v, const char* filter, const char* param) {
  if (v.kind == Kind::Int) return v.integer;
  if (v.kind == Kind::Bool) return v.boolean ? 1 : 0;
  SLIME_FAIL("TypeError: filter '", filter, "': '", param, "' must be an integer, got ", type_name(v));
}

// `item.a.0.b` as jinja2's make_attrgetter resolves it: each part through getitem, digit parts as integers.
Value get_path(Interpreter& interp, const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return interp.get_item(item, attribute);
  Value current = item;
  static const std::string dot = ".";
  for (const std::string& part : text::split(attribute.str(), &dot, -1, false)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    current = interp.get_item(current, digits ? Value::from_int(std::stoll(part)) : Value::from_string(part));
  }
  return current;
}

// Sort key of sort/unique/dictsort/min/max: strings lowered unless case-sensitive.
Value ignore_case(const Value& v, bool case_sensitive) {
  if (case_sensitive || !v.is_string()) return v;
  return Value::from_string(text::lower(v.str()));
}

// jinja2's map, select, unique, items, batch are Python generators: lazy, so a failure (iterating an int, an
// unknown filter name) surfaces only when the result is iterated. Here the items are computed at once and an error
// is kept for that moment.
Value lazily(const char* type, const std::function<std::vector<Value>()>& compute) {
  try {
    return Value::new_generator(type, compute());
  } catch (const slime::Error& e) {
    return Value::new_generator(type, {}, e.what());
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python's float(str): surrounding whitespace allowed, underscores between digits, inf/nan words.
bool parse_python_float(const std::string& s, double* out) {
  std::string t = text::strip(s, nullptr, true, true), cleaned;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_' && i > 0 && i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(t[i + 1])))
      continue;
    cleaned += t[i];
  }
  if (cleaned.empty()) return false;
  std::string lowered = text::lower(cleaned);
  size_t sign = (lowered[0] == '+' || lowered[0] == '-') ? 1 : 0;
  std::string word = lowered.substr(sign);
  if (word == "inf" || word == "infinity" || word == "nan") {
    *out = word == "nan" ? NAN : INFINITY;
    if (lowered[0] == '-') *out = -*out;
    return true;
  }
  if (word.find_first_not_of("0123456789.e+-") != std::string::npos) return false;  // no hex floats
  char* end = nullptr;
  *out = std::strtod(cleaned.c_str(), &end);
  return end && *end == '\0';
}

// Python's int(str, base): whitespace and underscores allowed, optional prefix for bases 2/8/16/0.
bool parse_python_int(const std::string& s, int64_t base, int64_t* out) {
  std::string t = text::strip(s, nullptr, true, true), cleaned;
  for (size_t i = 0; i < t.size(); ++i)
    if (!(t[i] == '_' && i > 0 && i + 1 < t.size())) cleaned += t[i];
  if (cleaned.empty() || cleaned.find('_') != std::string::npos) return false;
  size_t pos = (cleaned[0] == '+' || cleaned[0] == '-') ? 1 : 0;
  std::string rest = text::lower(cleaned.substr(pos));
  if (rest.size() > 2 && rest[0] == '0' && ((rest[1] == 'x' && (base == 16 || base == 0)) ||
                                            (rest[1] == 'o' && (base == 8 || base == 0)) ||
                                            (rest[1] == 'b' && (base == 2 || base == 0)))) {
    base = rest[1] == 'x' ? 16 : rest[1] == 'o' ? 8 : 2;
    rest = rest.substr(2);
  } else if (base == 0) {
    if (rest.size() > 1 && rest[0] == '0') return false;
    base = 10;
  }
  if (rest.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(rest.c_str(), &end, static_cast<int>(base));
  if (!end || *end != '\0' || errno == ERANGE) return false;
  *out = cleaned[0] == '-' ? -v : v;
  return true;
}

std::vector<Value> sorted_copy(std::vector<Value> items, bool reverse, const std::function<Value(const Value&)>& key) {
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (Value& item : items) keyed.emplace_back(key(item), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? values_less(b.first, a.first) : values_less(a.first, b.first);
  });
  std::vector<Value> out;
  out.reserve(keyed.size());
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

// ---- filters ----------------------------------------------------------------------------------------------------

Value f_abs(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("abs", args);
  if (v.kind == Kind::Int || v.kind == Kind::Bool) return Value::from_int(std::llabs(v.kind == Kind::Bool ? v.boolean : v.integer));
  if (v.kind == Kind::Float) return Value::from_float(std::fabs(v.number));
  if (v.is_undefined()) fail_undefined(v);
  SLIME_FAIL("TypeError: bad operand type for abs(): '", type_name(v), "'");
}

Value f_attr(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("attr", args, {"name"}, 1);
  bool found = false;
  Value method = lookup_method(v, to_str(a.get(0)), &found);
  if (found) return method;
  if (v.kind == Kind::Namespace)
    if (const Value* x = v.dict->find(to_str(a.get(0)))) return *x;
  return Value::undefined("'" + type_name(v) + " object' has no attribute '" + to_str(a.get(0)) + "'");
}

Value f_batch(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("batch", args, {"linecount", "fill_with"}, 1);
  return lazily("generator", [&] {
    int64_t size = int_param(a.get(0), "batch", "linecount");
    if (size <= 0) SLIME_FAIL("ValueError: filter 'batch': linecount must be positive");
    std::vector<Value> batches, current;
    for (Value& item : iterate(v)) {
      current.push_back(item);
      if (static_cast<int64_t>(current.size()) == size) {
        batches.push_back(Value::new_list(std::move(current)));
        current.clear();
      }
    }
    if (!current.empty()) {
      if (a.has(1) && !a.get(1).is_none())
        while (static_cast<int64_t>(current.size()) < size) current.push_back(a.get(1));
      batches.push_back(Value::new_list(std::move(current)));
    }
    return batches;
  });
}

Value f_capitalize(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("capitalize", args);
  return Value::from_string(text::capitalize(to_str(v)));
}

// The value must already be a string for center and indent (jinja2 calls str methods on it without converting).
const std::string& require_string(const Value& v, const char* filter) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) SLIME_FAIL("TypeError: filter '", filter, "' needs a string, got '", type_name(v), "'");
  return v.str();
}

Value f_center(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("center", args, {"width"});
  int64_t width = a.has(0) ? int_param(a.get(0), "center", "width") : 80;
  std::string s = to_str(v);
  int64_t pad = width - text::length(s);
  if (pad <= 0) return Value::from_string(s);
  int64_t left = pad / 2 + (pad & width & 1);
  return Value::from_string(std::string(static_cast<size_t>(left), ' ') + s +
                            std::string(static_cast<size_t>(pad - left), ' '));
}

Value f_default(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("default", args, {"default_value", "boolean"});
  bool boolean = a.has(1) && truthy(a.get(1));
  if (v.is_undefined() || (boolean && !truthy(v))) return a.get_or(0, Value::from_string(""));
  return v;
}

Value f_dictsort(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("dictsort", args, {"case_sensitive", "by", "reverse"});
  bool case_sensitive = a.has(0) && truthy(a.get(0));
  std::string by = a.has(1) ? to_str(a.get(1)) : "key";
  if (by != "key" && by != "value") SLIME_FAIL("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
  size_t position = by == "key" ? 0 : 1;
  if (!v.is_dict()) SLIME_FAIL("TypeError: filter 'dictsort' needs a dict, got ", type_name(v));
  std::vector<Value> items;
  for (const auto& [key, value] : v.dict->entries) items.push_back(Value::new_list({key, value}, true));
  return Value::new_list(sorted_copy(std::move(items), a.has(2) && truthy(a.get(2)), [&](const Value& item) {
    return ignore_case(item.list->items[position], case_sensitive);
  }));
}

Value f_escape(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("escape", args);
  return Value::from_string(html_escape(to_str(v)));
}

Value f_first(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("first", args);
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("last", args);
  if (v.kind == Kind::Generator) SLIME_FAIL("TypeError: '", type_name(v), "' object is not reversible");
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value f_float(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("float", args, {"default"});
  Value fallback = a.get_or(0, Value::from_float(0.0));
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::from_float(as_double(v));
  double parsed;
  if (v.is_string() && parse_python_float(v.str(), &parsed)) return Value::from_float(parsed);
  return fallback;
}

Value f_format(Interpreter&, Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keywords.empty())
    SLIME_FAIL("FilterArgumentError: can't handle positional and keyword arguments at the same time");
  Value format_args;
  if (!args.keywords.empty()) {
    format_args = Value::new_dict();
    for (const auto& [key, value] : args.keywords) format_args.dict->set(key, value);
  } else {
    format_args = Value::new_list(args.positional, true);
  }
  return Value::from_string(percent_format(to_str(v), format_args));
}

Value f_groupby(Interpreter& interp, Value& v, CallArgs& args) {
  BoundArgs a("groupby", args, {"attribute", "default", "case_sensitive"}, 1);
  bool case_sensitive = a.has(2) && truthy(a.get(2));
  auto key_of = [&](const Value& item) {
    Value key = get_path(interp, item, a.get(0));
    if (key.is_undefined() && a.has(1)) key = a.get(1);
    return key;
  };
  std::vector<Value> sorted = sorted_copy(iterate(v), false, [&](const Value& item) {
    return ignore_case(key_of(item), case_sensitive);
  });
  std::vector<Value> groups;
  for (const Value& item : sorted) {
    Value key = key_of(item);
    Value norm = ignore_case(key, case_sensitive);
    if (!groups.empty() && values_equal(ignore_case(groups.back().list->items[0], case_sensitive), norm)) {
      groups.back().list->items[1].list->items.push_back(item);
    } else {
      groups.push_back(Value::new_list({key, Value::new_list({item})}, true));
    }
  }
  return Value::new_list(std::move(groups));
}

Value f_indent(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("indent", args, {"width", "first", "blank"});
  std::string indention = a.has(0) && a.get(0).is_string() ? a.get(0).str()
                                                           : std::string(a.has(0) ? std::max<int64_t>(0, int_param(a.get(0), "indent", "width")) : 4, ' ');
  bool first = a.has(1) && truthy(a.get(1)), blank = a.has(2) && truthy(a.get(2));
  std::string s = require_string(v, "indent") + "\n";  // jinja2's trick so splitlines keeps a trailing empty line
  std::vector<std::string> lines = text::splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (first) rv = indention + rv;
  return Value::from_string(rv);
}

Value f_int(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("int", args, {"default", "base"});
  Value fallback = a.get_or(0, Value::from_int(0));
  int64_t base = a.has(1) ? int_param(a.get(1), "int", "base") : 10;
  if (v.is_undefined()) fail_undefined(v);
  if (v.kind == Kind::Int) return v;
  if (v.kind == Kind::Bool) return Value::from_int(v.boolean);
  if (v.kind == Kind::Float) {
    if (!std::isfinite(v.number)) return fallback;
    return Value::from_int(static_cast<int64_t>(v.number));
  }
  if (v.is_string()) {
    int64_t parsed;
    if (parse_python_int(v.str(), base, &parsed)) return Value::from_int(parsed);
    double f;  // "42.23"|int gives 42, as jinja2's fallback through float does
    if (parse_python_float(v.str(), &f) && std::isfinite(f)) return Value::from_int(static_cast<int64_t>(f));
  }
  return fallback;
}

Value f_items(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("items", args);
  return lazily("generator", [&] {
    std::vector<Value> pairs;
    if (v.is_undefined()) return pairs;
    if (!v.is_dict()) SLIME_FAIL("TypeError: Can only get item pairs from a mapping.");
    for (const auto& [key, value] : v.dict->entries) pairs.push_back(Value::new_list({key, value}, true));
    return pairs;
  });
}

Value f_join(Interpreter& interp, Value& v, CallArgs& args) {
  BoundArgs a("join", args, {"d", "attribute"});
  std::string separator = a.has(0) ? to_str(a.get(0)) : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += to_str(a.has(1) && !a.get(1).is_none() ? get_path(interp, item, a.get(1)) : item);
  }
  return Value::from_string(std::move(out));
}

Value f_length(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("length", args);
  if (v.kind == Kind::Namespace) SLIME_FAIL("TypeError: object of type 'Namespace' has no len()");
  return Value::from_int(length_of(v));
}

Value f_list(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("list", args);
  return Value::new_list(iterate(v));
}

Value f_lower(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("lower", args);
  return Value::from_string(text::lower(to_str(v)));
}

Value f_upper(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("upper", args);
  return Value::from_string(text::upper(to_str(v)));
}

// jinja2's title: words start after whitespace, '-', '(', '{', '[' or '<'; the rest of each word is lowered.
Value f_title(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("title", args);
  std::string out;
  bool word_start = true;
  for (char32_t c : text::decode(to_str(v))) {
    bool boundary = text::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (boundary) {
      text::append_utf8(out, c);
      word_start = true;
    } else {
      text::append_utf8(out, word_start ? text::to_upper(c) : text::to_lower(c));
      word_start = false;
    }
  }
  return Value::from_string(out);
}

// map and select/reject yield nothing for a falsy input (None, "", []), as jinja2's `if value:` guard does.
Value f_map(Interpreter& interp, Value& v, CallArgs& args) {
  return lazily("generator", [&] {
    std::vector<Value> out;
    if (!truthy(v)) return out;
    auto attribute = std::find_if(args.keywords.begin(), args.keywords.end(),
                                  [](const auto& kw) { return kw.first == "attribute"; });
    if (attribute != args.keywords.end()) {
      BoundArgs a("map", args, {"attribute", "default"});
      for (const Value& item : iterate(v)) {
        Value x = get_path(interp, item, a.get(0));
        out.push_back(x.is_undefined() && a.has(1) ? a.get(1) : x);
      }
      return out;
    }
    if (args.positional.empty()) SLIME_FAIL("FilterArgumentError: map requires a filter argument");
    std::string filter = to_str(args.positional[0]);
    if (!is_known_filter(filter)) SLIME_FAIL("TemplateRuntimeError: No filter named '", filter, "'.");
    for (const Value& item : iterate(v)) {
      CallArgs rest;
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
      rest.keywords = args.keywords;
      out.push_back(interp.apply_filter(filter, item, rest));
    }
    return out;
  });
}

Value min_max(Interpreter& interp, Value& v, CallArgs& args, bool want_max) {
  BoundArgs a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  bool case_sensitive = a.has(0) && truthy(a.get(0));
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = [&](const Value& item) {
    return ignore_case(a.has(1) && !a.get(1).is_none() ? get_path(interp, item, a.get(1)) : item, case_sensitive);
  };
  Value best = items[0], best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (want_max ? values_less(best_key, k) : values_less(k, best_key)) {
      best = items[i];
      best_key = k;
    }
  }
  return best;
}

Value f_max(Interpreter& interp, Value& v, CallArgs& args) { return min_max(interp, v, args, true); }
Value f_min(Interpreter& interp, Value& v, CallArgs& args) { return min_max(interp, v, args, false); }

Value f_pprint(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("pprint", args);
  return Value::from_string(to_repr(v));
}

// select / reject / selectattr / rejectattr share jinja2's select_or_reject.
std::vector<Value> select_or_reject_items(Interpreter& interp, Value& v, CallArgs& args, bool keep_matches,
                                          bool by_attribute);

Value select_or_reject(Interpreter& interp, Value& v, CallArgs& args, bool keep_matches, bool by_attribute) {
  return lazily("generator", [&] { return select_or_reject_items(interp, v, args, keep_matches, by_attribute); });
}

std::vector<Value> select_or_reject_items(Interpreter& interp, Value& v, CallArgs& args, bool keep_matches,
                                          bool by_attribute) {
  size_t next = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) SLIME_FAIL("FilterArgumentError: Missing parameter for attribute name");
    attribute = args.positional[next++];
  }
  std::string test;
  bool has_test = next < args.positional.size();
  if (has_test) {
    test = to_str(args.positional[next++]);
    if (!is_known_test(test)) SLIME_FAIL("TemplateRuntimeError: No test named '", test, "'.");
  }
  std::vector<Value> out;
  if (!truthy(v)) return out;
  for (const Value& item : iterate(v)) {
    Value probe = by_attribute ? get_path(interp, item, attribute) : item;
    bool matched;
    if (has_test) {
      CallArgs rest;
      rest.positional.assign(args.positional.begin() + static_cast<long>(next), args.positional.end());
      rest.keywords = args.keywords;
      matched = interp.apply_test(test, probe, rest);
    } else {
      matched = truthy(probe);
    }
    if (matched == keep_matches) out.push_back(item);
  }
  return out;
}

Value f_select(Interpreter& i, Value& v, CallArgs& a) { return select_or_reject(i, v, a, true, false); }
Value f_reject(Interpreter& i, Value& v, CallArgs& a) { return select_or_reject(i, v, a, false, false); }
Value f_selectattr(Interpreter& i, Value& v, CallArgs& a) { return select_or_reject(i, v, a, true, true); }
Value f_rejectattr(Interpreter& i, Value& v, CallArgs& a) { return select_or_reject(i, v, a, false, true); }

Value f_replace(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("replace", args, {"old", "new", "count"}, 2);
  int64_t count = a.has(2) && !a.get(2).is_none() ? int_param(a.get(2), "replace", "count") : -1;
  return Value::from_string(text::replace(to_str(v), to_str(a.get(0)), to_str(a.get(1)), count));
}

Value f_reverse(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("reverse", args);
  if (v.is_string()) {
    std::vector<char32_t> chars = text::decode(v.str());
    std::reverse(chars.begin(), chars.end());
    return Value::from_string(text::encode(chars));
  }
  // reversed(list) / reversed(dict) are lazy iterators; what reversed() refuses (generators) becomes a list.
  const char* type = v.is_list() ? (v.list->is_tuple ? "reversed" : "list_reverseiterator")
                     : v.is_dict() ? "dict_reversekeyiterator" : v.is_undefined() ? "reversed" : nullptr;
  if (!type && v.kind != Kind::Generator) SLIME_FAIL("FilterArgumentError: argument must be iterable");
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return type ? Value::new_generator(type, std::move(items)) : Value::new_list(std::move(items));
}

Value f_round(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("round", args, {"precision", "method"});
  int64_t precision = a.has(0) ? int_param(a.get(0), "round", "precision") : 0;
  std::string method = a.has(1) ? to_str(a.get(1)) : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    SLIME_FAIL("FilterArgumentError: method must be common, ceil or floor");
  if (!v.is_number()) SLIME_FAIL("TypeError: filter 'round' needs a number, got ", type_name(v));
  if (method == "common") {
    if (v.kind != Kind::Float) return Value::from_int(v.kind == Kind::Bool ? v.boolean : v.integer);
    if (!std::isfinite(v.number)) return v;
    if (precision < 0) {
      double scale = std::pow(10.0, static_cast<double>(-precision));
      return Value::from_float(std::nearbyint(v.number / scale) * scale);
    }
    char buf[512];  // printf rounds the exact binary value half-to-even, as Python's round(x, n) does
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), v.number);
    return Value::from_float(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = as_double(v) * scale;
  return Value::from_float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_safe(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("safe", args);
  return v;
}

Value f_sort(Interpreter& interp, Value& v, CallArgs& args) {
  BoundArgs a("sort", args, {"reverse", "case_sensitive", "attribute"});
  bool case_sensitive = a.has(1) && truthy(a.get(1));
  return Value::new_list(sorted_copy(iterate(v), a.has(0) && truthy(a.get(0)), [&](const Value& item) {
    return ignore_case(a.has(2) && !a.get(2).is_none() ? get_path(interp, item, a.get(2)) : item, case_sensitive);
  }));
}

Value f_string(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("string", args);
  return v.is_string() ? v : Value::from_string(to_str(v));
}

Value f_sum(Interpreter& interp, Value& v, CallArgs& args) {
  BoundArgs a("sum", args, {"attribute", "start"});
  Value total = a.get_or(1, Value::from_int(0));
  if (total.is_string()) SLIME_FAIL("TypeError: sum() can't sum strings [use ''.join(seq) instead]");
  for (const Value& item : iterate(v))
    total = binary_operation(BinaryOp::Add, total, a.has(0) && !a.get(0).is_none() ? get_path(interp, item, a.get(0)) : item);
  return total;
}

Value f_trim(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("trim", args, {"chars"});
  if (a.has(0) && !a.get(0).is_none()) {
    std::string chars = to_str(a.get(0));
    return Value::from_string(text::strip(to_str(v), &chars, true, true));
  }
  return Value::from_string(text::strip(to_str(v), nullptr, true, true));
}

Value f_truncate(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("truncate", args, {"length", "killwords", "end", "leeway"});
  int64_t length = a.has(0) ? int_param(a.get(0), "truncate", "length") : 255;
  bool killwords = a.has(1) && truthy(a.get(1));
  std::string end = a.has(2) ? to_str(a.get(2)) : "...";
  int64_t leeway = a.has(3) && !a.get(3).is_none() ? int_param(a.get(3), "truncate", "leeway") : 5;
  int64_t end_length = text::length(end);
  if (length < end_length) SLIME_FAIL("AssertionError: expected length >= ", end_length, ", got ", length);
  if (length_of(v) <= length + leeway) return v;  // short enough: the value itself, whatever its type
  if (!v.is_string()) SLIME_FAIL("TypeError: filter 'truncate' needs a string, got '", type_name(v), "'");
  const std::string& s = v.str();
  std::vector<char32_t> chars = text::decode(s);
  chars.resize(static_cast<size_t>(length - end_length));
  std::string head = text::encode(chars);
  if (killwords) return Value::from_string(head + end);
  std::string space = " ";
  return Value::from_string(text::split(head, &space, 1, true).front() + end);
}

Value f_unique(Interpreter& interp, Value& v, CallArgs& args) {
  BoundArgs a("unique", args, {"case_sensitive", "attribute"});
  bool case_sensitive = a.has(0) && truthy(a.get(0));
  return lazily("generator", [&] {
    std::vector<Value> out, seen;
    for (const Value& item : iterate(v)) {
      Value key = ignore_case(a.has(1) && !a.get(1).is_none() ? get_path(interp, item, a.get(1)) : item,
                              case_sensitive);
      if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, key); })) continue;
      seen.push_back(key);
      out.push_back(item);
    }
    return out;
  });
}

Value f_wordcount(Interpreter&, Value& v, CallArgs& args) {
  expect_no_arguments("wordcount", args);
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : text::decode(to_str(v))) {
    bool word_char = text::is_alpha(c) || text::is_digit(c) || c == '_';
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::from_int(words);
}

// transformers' override: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(Interpreter&, Value& v, CallArgs& args) {
  BoundArgs a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle style;
  style.ensure_ascii = a.has(0) && truthy(a.get(0));
  std::string indent_unit;
  if (a.has(1) && !a.get(1).is_none()) {
    const Value& indent = a.get(1);
    if (indent.is_string()) indent_unit = indent.str();
    else indent_unit = std::string(static_cast<size_t>(std::max<int64_t>(0, int_param(indent, "tojson", "indent"))), ' ');
    style.indent_unit = &indent_unit;
    style.item_separator = ",";  // json.dumps drops the space after commas when indenting
  }
  if (a.has(2) && !a.get(2).is_none()) {
    std::vector<Value> separators = iterate(a.get(2));
    if (separators.size() != 2 || !separators[0].is_string() || !separators[1].is_string())
      SLIME_FAIL("TypeError: tojson separators must be a pair of strings");
    style.item_separator = separators[0].str();
    style.key_separator = separators[1].str();
  }
  style.sort_keys = a.has(3) && truthy(a.get(3));
  return Value::from_string(to_json(v, style));
}

const std::unordered_map<std::string, FilterFn>& filter_table() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize}, {"center", f_center},
      {"count", f_length}, {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
      {"escape", f_escape}, {"first", f_first}, {"float", f_float}, {"forceescape", f_escape}, {"format", f_format},
      {"groupby", f_groupby}, {"indent", f_indent}, {"int", f_int}, {"items", f_items}, {"join", f_join},
      {"last", f_last}, {"length", f_length}, {"list", f_list}, {"lower", f_lower}, {"map", f_map}, {"max", f_max},
      {"min", f_min}, {"pprint", f_pprint}, {"reject", f_reject}, {"rejectattr", f_rejectattr},
      {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round}, {"safe", f_safe}, {"select", f_select},
      {"selectattr", f_selectattr}, {"sort", f_sort}, {"string", f_string}, {"sum", f_sum}, {"title", f_title},
      {"tojson", f_tojson}, {"trim", f_trim}, {"truncate", f_truncate}, {"unique", f_unique}, {"upper", f_upper},
      {"wordcount", f_wordcount}};
  return table;
}

// ---- tests ------------------------------------------------------------------------------------------------------

const Value& test_arg(const CallArgs& args, const char* test) {
  if (args.positional.size() != 1 || !args.keywords.empty())
    SLIME_FAIL("TypeError: test '", test, "' takes exactly one argument");
  return args.positional[0];
}

void no_args(const CallArgs& args, const char* test) {
  if (!args.positional.empty() || !args.keywords.empty())
    SLIME_FAIL("TypeError: test '", test, "' takes no arguments");
}

// value % 2 as Python computes it, for the odd/even tests (3.5 % 2 == 1.5 is neither).
Value python_mod2(const Value& v) { return binary_operation(BinaryOp::Mod, v, Value::from_int(2)); }

#define SIMPLE_TEST(fn, name, expr)                      \
  bool fn(Interpreter&, const Value& v, CallArgs& args) { \
    no_args(args, name);                                  \
    return (expr);                                        \
  }

SIMPLE_TEST(t_defined, "defined", !v.is_undefined())
SIMPLE_TEST(t_undefined, "undefined", v.is_undefined())
SIMPLE_TEST(t_none, "none", v.is_none())
SIMPLE_TEST(t_boolean, "boolean", v.kind == Kind::Bool)
SIMPLE_TEST(t_true, "true", v.kind == Kind::Bool && v.boolean)
SIMPLE_TEST(t_false, "false", v.kind == Kind::Bool && !v.boolean)
SIMPLE_TEST(t_integer, "integer", v.kind == Kind::Int)
SIMPLE_TEST(t_float, "float", v.kind == Kind::Float)
SIMPLE_TEST(t_number, "number", v.is_number())
SIMPLE_TEST(t_string, "string", v.is_string())
SIMPLE_TEST(t_mapping, "mapping", v.is_dict())
// Undefined has __iter__, __len__ and __getitem__ (it raises), so jinja2 reports it iterable and a sequence.
SIMPLE_TEST(t_iterable, "iterable",
            v.is_string() || v.is_list() || v.is_dict() || v.is_undefined() || v.kind == Kind::Generator)
SIMPLE_TEST(t_sequence, "sequence", v.is_string() || (v.is_list() && !v.list->view) || v.is_dict() || v.is_undefined())
SIMPLE_TEST(t_callable, "callable", v.kind == Kind::Callable || v.is_undefined())
SIMPLE_TEST(t_escaped, "escaped", false)
SIMPLE_TEST(t_odd, "odd", values_equal(python_mod2(v), Value::from_int(1)))
SIMPLE_TEST(t_even, "even", values_equal(python_mod2(v), Value::from_int(0)))
#undef SIMPLE_TEST

bool t_lower(Interpreter&, const Value& v, CallArgs& args) {
  no_args(args, "lower");
  std::string s = to_str(v);
  bool any = false;
  for (char32_t c : text::decode(s)) {
    if (!text::is_cased_letter(c)) continue;
    any = true;
    if (!text::is_lower(c)) return false;
  }
  return any;
}

bool t_upper(Interpreter&, const Value& v, CallArgs& args) {
  no_args(args, "upper");
  bool any = false;
  for (char32_t c : text::decode(to_str(v))) {
    if (!text::is_cased_letter(c)) continue;
    any = true;
    if (!text::is_upper(c)) return false;
  }
  return any;
}

bool t_divisibleby(Interpreter&, const Value& v, CallArgs& args) {
  Value remainder = binary_operation(BinaryOp::Mod, v, test_arg(args, "divisibleby"));
  return !truthy(remainder);
}

bool t_eq(Interpreter&, const Value& v, CallArgs& args) { return values_equal(v, test_arg(args, "eq")); }
bool t_ne(Interpreter&, const Value& v, CallArgs& args) { return !values_equal(v, test_arg(args, "ne")); }
bool t_lt(Interpreter&, const Value& v, CallArgs& args) { return values_less(v, test_arg(args, "lt"), "<"); }
bool t_le(Interpreter&, const Value& v, CallArgs& args) { return !values_less(test_arg(args, "le"), v, "<="); }
bool t_gt(Interpreter&, const Value& v, CallArgs& args) { return values_less(test_arg(args, "gt"), v, ">"); }
bool t_ge(Interpreter&, const Value& v, CallArgs& args) { return !values_less(v, test_arg(args, "ge"), ">="); }
bool t_in(Interpreter&, const Value& v, CallArgs& args) { return contains(test_arg(args, "in"), v); }

bool t_sameas(Interpreter&, const Value& v, CallArgs& args) {
  const Value& other = test_arg(args, "sameas");
  if (v.kind != other.kind) return false;
  switch (v.kind) {
    case Kind::None: case Kind::Undefined: return true;
    case Kind::Bool: return v.boolean == other.boolean;
    case Kind::Int: return v.integer == other.integer && v.integer >= -5 && v.integer <= 256;  // CPython's cache
    case Kind::List: return v.list == other.list;
    case Kind::Dict: case Kind::Namespace: return v.dict == other.dict;
    case Kind::Callable: return v.callable == other.callable;
    case Kind::Generator: return v.list == other.list;
    default: return false;
  }
}

bool t_filter(Interpreter&, const Value& v, CallArgs& args) {
  no_args(args, "filter");
  return v.is_string() && is_known_filter(v.str());
}

bool t_test(Interpreter&, const Value& v, CallArgs& args) {
  no_args(args, "test");
  return v.is_string() && is_known_test(v.str());
}

const std::unordered_map<std::string, TestFn>& test_table() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
      {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float}, {"number", t_number},
      {"string", t_string}, {"mapping", t_mapping}, {"iterable", t_iterable}, {"sequence", t_sequence},
      {"callable", t_callable}, {"escaped", t_escaped}, {"odd", t_odd}, {"even", t_even}, {"lower", t_lower},
      {"upper", t_upper}, {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq},
      {"ne", t_ne}, {"!=", t_ne}, {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le},
      {"gt", t_gt}, {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge}, {"in", t_in},
      {"sameas", t_sameas}, {"filter", t_filter}, {"test", t_test}};
  return table;
}

}  // namespace

bool is_known_filter(const std::string& name) { return filter_table().count(name) != 0; }
bool is_known_test(const std::string& name) { return test_table().count(name) != 0; }

Value run_filter(Interpreter& interp, const std::string& name, Value input, CallArgs& args) {
  auto it = filter_table().find(name);
  if (it == filter_table().end()) SLIME_FAIL("TemplateRuntimeError: No filter named '", name, "' found.");
  return it->second(interp, input, args);
}

bool run_test(Interpreter& interp, const std::string& name, const Value& value, CallArgs& args) {
  auto it = test_table().find(name);
  if (it == test_table().end()) SLIME_FAIL("TemplateRuntimeError: No test named '", name, "' found.");
  return it->second(interp, value, args);
}

}  // namespace slime::jinja

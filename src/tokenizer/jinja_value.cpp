// Python object semantics for Jinja values: construction, str()/repr(), equality and ordering, iteration,
// json.dumps and conversion from JSON documents (see jinja_value.h).
#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/jinja_text.h"

namespace slime::jinja {

// ---- construction -----------------------------------------------------------------------------------------------

Value Value::undefined(std::string hint) {
  Value v;
  v.kind = Kind::Undefined;
  if (!hint.empty()) v.text = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}

Value Value::from_bool(bool b) {
  Value v;
  v.kind = Kind::Bool;
  v.boolean = b;
  return v;
}

Value Value::from_int(int64_t i) {
  Value v;
  v.kind = Kind::Int;
  v.integer = i;
  return v;
}

Value Value::from_float(double f) {
  Value v;
  v.kind = Kind::Float;
  v.number = f;
  return v;
}

Value Value::from_string(std::string s) {
  Value v;
  v.kind = Kind::String;
  v.text = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::new_list(std::vector<Value> items, bool is_tuple) {
  Value v;
  v.kind = Kind::List;
  v.list = std::make_shared<ListData>();
  v.list->items = std::move(items);
  v.list->is_tuple = is_tuple;
  return v;
}

Value Value::new_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<DictData>();
  return v;
}

Value Value::new_namespace() {
  Value v;
  v.kind = Kind::Namespace;
  v.dict = std::make_shared<DictData>();
  return v;
}

Value Value::new_callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  Value v;
  v.kind = Kind::Callable;
  v.callable = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::new_generator(const char* type, std::vector<Value> items, std::string deferred_error) {
  Value v;
  v.kind = Kind::Generator;
  v.list = std::make_shared<ListData>();
  v.list->items = std::move(items);
  v.list->view = type;
  v.list->deferred_error = std::move(deferred_error);
  return v;
}

bool Value::is_tuple() const { return kind == Kind::List && list->is_tuple; }

std::string Value::undefined_hint() const { return text ? *text : std::string("value is undefined"); }

// ---- dict -------------------------------------------------------------------------------------------------------

const Value* DictData::find(const Value& key) const {
  auto it = index.find(hash_key(key));
  return it == index.end() ? nullptr : &entries[it->second].second;
}

const Value* DictData::find(const std::string& key) const {
  auto it = index.find("s" + key);
  return it == index.end() ? nullptr : &entries[it->second].second;
}

void DictData::set(const Value& key, Value value) {
  std::string hashed = hash_key(key);
  auto it = index.find(hashed);
  if (it != index.end()) {
    entries[it->second].second = std::move(value);
    return;
  }
  index.emplace(std::move(hashed), entries.size());
  entries.emplace_back(key, std::move(value));
}

std::string hash_key(const Value& key) {
  switch (key.kind) {
    case Kind::String: return "s" + key.str();
    case Kind::Int: return "n" + std::to_string(key.integer);
    case Kind::Bool: return key.boolean ? "n1" : "n0";
    case Kind::Float:
      if (std::isfinite(key.number) && key.number == std::floor(key.number) && std::fabs(key.number) < 9.2e18)
        return "n" + std::to_string(static_cast<int64_t>(key.number));
      return "f" + float_repr(key.number);
    case Kind::None: return "N";
    case Kind::Generator: case Kind::Callable: case Kind::Namespace: {  // hashed by identity, as in Python
      char buf[32];
      std::snprintf(buf, sizeof buf, "@%p", key.kind == Kind::Callable ? static_cast<const void*>(key.callable.get())
                                           : key.kind == Kind::Generator ? static_cast<const void*>(key.list.get())
                                                                         : static_cast<const void*>(key.dict.get()));
      return buf;
    }
    case Kind::List:
      if (key.list->is_tuple) {
        std::string out = "t(";
        for (const Value& item : key.list->items) out += hash_key(item) + ",";
        return out + ")";
      }
      break;
    default: break;
  }
  SLIME_FAIL("TypeError: unhashable type: '", type_name(key), "'");
}

// ---- str / repr -------------------------------------------------------------------------------------------------

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return v.list->is_tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
    case Kind::Generator: return v.list->view;
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: return v.boolean;
    case Kind::Int: return v.integer != 0;
    case Kind::Float: return v.number != 0.0;
    case Kind::String: return !v.str().empty();
    case Kind::List: return !v.list->items.empty();
    case Kind::Dict: return v.dict->size() != 0;
    case Kind::Namespace: case Kind::Callable: case Kind::Generator: return true;
  }
  return false;
}

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0.0) return std::signbit(f) ? "-0.0" : "0.0";
  // The shortest %e form that reads back to the same double is the digit string Python's repr uses.
  char buf[40];
  for (int precision = 0; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string s(buf);
  bool negative = s[0] == '-';
  if (negative) s.erase(0, 1);
  size_t e_pos = s.find('e');
  std::string mantissa = s.substr(0, e_pos);
  int exponent = std::atoi(s.c_str() + e_pos + 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();

  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      std::string int_part = digits.substr(0, std::min(digits.size(), static_cast<size_t>(exponent) + 1));
      int_part.append(static_cast<size_t>(exponent) + 1 - int_part.size(), '0');
      std::string frac = digits.size() > static_cast<size_t>(exponent) + 1 ? digits.substr(exponent + 1) : "0";
      out += int_part + "." + frac;
    } else {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  }
  return out;
}

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : text::decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!text::is_printable(c)) {
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    } else {
      text::append_utf8(out, c);
    }
  }
  out += quote;
  return out;
}

std::string to_repr(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::String: return repr_string(v.str());
    case Kind::List: {
      const auto& items = v.list->items;
      std::string out = v.list->is_tuple ? "(" : "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += to_repr(items[i]);
      }
      if (v.list->is_tuple && items.size() == 1) out += ",";
      out += v.list->is_tuple ? ")" : "]";
      return v.list->view ? std::string(v.list->view) + "(" + out + ")" : out;
    }
    case Kind::Dict: case Kind::Namespace: {
      std::string out = v.kind == Kind::Namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [key, value] : v.dict->entries) {
        if (!first) out += ", ";
        first = false;
        out += to_repr(key) + ": " + to_repr(value);
      }
      return out + (v.kind == Kind::Namespace ? "}>" : "}");
    }
    default: return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return v.boolean ? "True" : "False";
    case Kind::Int: return std::to_string(v.integer);
    case Kind::Float: return float_repr(v.number);
    case Kind::String: return v.str();
    case Kind::Callable: return "<function " + v.callable->name + ">";
    case Kind::Generator: return "<" + std::string(v.list->view) + " object>";
    default: return to_repr(v);
  }
}

// ---- comparison -------------------------------------------------------------------------------------------------

double as_double(const Value& v) {
  switch (v.kind) {
    case Kind::Bool: return v.boolean ? 1.0 : 0.0;
    case Kind::Int: return static_cast<double>(v.integer);
    case Kind::Float: return v.number;
    default: SLIME_FAIL("TypeError: must be real number, not ", type_name(v));
  }
}

static int64_t as_int64(const Value& v) { return v.kind == Kind::Bool ? (v.boolean ? 1 : 0) : v.integer; }

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return as_double(a) == as_double(b);
    return as_int64(a) == as_int64(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined: case Kind::None: return true;
    case Kind::String: return a.str() == b.str();
    case Kind::List: {
      if (a.list->is_tuple != b.list->is_tuple || a.list->items.size() != b.list->items.size()) return false;
      for (size_t i = 0; i < a.list->items.size(); ++i)
        if (!values_equal(a.list->items[i], b.list->items[i])) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [key, value] : a.dict->entries) {
        const Value* other = b.dict->find(key);
        if (!other || !values_equal(value, *other)) return false;
      }
      return true;
    }
    case Kind::Namespace: return a.dict == b.dict;
    case Kind::Callable: return a.callable == b.callable;
    case Kind::Generator: return a.list == b.list;
    default: return false;
  }
}

bool values_less(const Value& a, const Value& b, const char* op) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return as_double(a) < as_double(b);
    return as_int64(a) < as_int64(b);
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order == code point order
  if (a.is_list() && b.is_list() && a.list->is_tuple == b.list->is_tuple && !a.list->view && !b.list->view) {
    const auto &x = a.list->items, &y = b.list->items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!values_equal(x[i], y[i])) return values_less(x[i], y[i], op);
    return x.size() < y.size();
  }
  if (a.is_undefined() || b.is_undefined())
    SLIME_FAIL("UndefinedError: ", (a.is_undefined() ? a : b).undefined_hint());
  SLIME_FAIL("TypeError: '", op, "' not supported between instances of '", type_name(a), "' and '", type_name(b),
             "'");
}

// ---- iteration --------------------------------------------------------------------------------------------------

std::vector<Value> iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List: return v.list->items;
    case Kind::Generator: {
      if (!v.list->deferred_error.empty()) SLIME_FAIL(v.list->deferred_error);
      if (v.list->consumed) return {};
      v.list->consumed = true;
      return std::move(v.list->items);
    }
    case Kind::Dict: {
      std::vector<Value> keys;
      keys.reserve(v.dict->size());
      for (const auto& entry : v.dict->entries) keys.push_back(entry.first);
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : text::decode(v.str())) {
        std::string one;
        text::append_utf8(one, c);
        chars.push_back(Value::from_string(std::move(one)));
      }
      return chars;
    }
    default: SLIME_FAIL("TypeError: '", type_name(v), "' object is not iterable");
  }
}

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return 0;
    case Kind::String: return text::length(v.str());
    case Kind::List: return static_cast<int64_t>(v.list->items.size());
    case Kind::Dict: return static_cast<int64_t>(v.dict->size());
    default: SLIME_FAIL("TypeError: object of type '", type_name(v), "' has no len()");
  }
}

// ---- json.dumps -------------------------------------------------------------------------------------------------

static void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : text::decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[16];
        if (c < 0x20 || (ensure_ascii && c > 0x7E && c < 0x10000)) {
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else if (ensure_ascii && c >= 0x10000) {  // UTF-16 surrogate pair, as json.dumps writes it
          char32_t u = c - 0x10000;
          std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (u >> 10)),
                        static_cast<unsigned>(0xDC00 + (u & 0x3FF)));
          out += buf;
        } else {
          text::append_utf8(out, c);
        }
      }
    }
  }
  out += '"';
}

static std::string json_key(const Value& key) {
  switch (key.kind) {
    case Kind::String: return key.str();
    case Kind::Bool: return key.boolean ? "true" : "false";
    case Kind::None: return "null";
    case Kind::Int: return std::to_string(key.integer);
    case Kind::Float: return float_repr(key.number);
    default: SLIME_FAIL("TypeError: keys must be str, int, float, bool or None, not ", type_name(key));
  }
}

static void json_newline(std::string& out, const JsonStyle& style, int level) {
  out += '\n';
  for (int i = 0; i < level; ++i) out += *style.indent_unit;
}

static void json_dump(std::string& out, const Value& v, const JsonStyle& style, int level) {
  switch (v.kind) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.boolean ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.integer); return;
    case Kind::Float:
      if (std::isnan(v.number)) out += "NaN";
      else if (std::isinf(v.number)) out += v.number > 0 ? "Infinity" : "-Infinity";
      else out += float_repr(v.number);
      return;
    case Kind::String: json_string(out, v.str(), style.ensure_ascii); return;
    case Kind::List: {
      const auto& items = v.list->items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += style.item_separator;
        if (style.indent_unit) json_newline(out, style, level + 1);
        json_dump(out, items[i], style, level + 1);
      }
      if (style.indent_unit) json_newline(out, style, level);
      out += ']';
      return;
    }
    case Kind::Dict: {
      if (v.dict->size() == 0) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> members;
      for (const auto& [key, value] : v.dict->entries) members.emplace_back(json_key(key), &value);
      if (style.sort_keys)
        std::stable_sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t i = 0; i < members.size(); ++i) {
        if (i) out += style.item_separator;
        if (style.indent_unit) json_newline(out, style, level + 1);
        json_string(out, members[i].first, style.ensure_ascii);
        out += style.key_separator;
        json_dump(out, *members[i].second, style, level + 1);
      }
      if (style.indent_unit) json_newline(out, style, level);
      out += '}';
      return;
    }
    default: SLIME_FAIL("TypeError: Object of type ", type_name(v), " is not JSON serializable");
  }
}

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  json_dump(out, v, style, 0);
  return out;
}

// ---- from JSON --------------------------------------------------------------------------------------------------

template <class Json>
static Value convert_json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::from_bool(j.template get<bool>());
    case Json::value_t::number_integer: return Value::from_int(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::from_int(static_cast<int64_t>(u));
      return Value::from_float(static_cast<double>(u));
    }
    case Json::value_t::number_float: return Value::from_float(j.template get<double>());
    case Json::value_t::string: return Value::from_string(j.template get<std::string>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert_json(item));
      return Value::new_list(std::move(items));
    }
    case Json::value_t::object: {
      Value dict = Value::new_dict();
      for (auto it = j.begin(); it != j.end(); ++it) dict.dict->set(it.key(), convert_json(it.value()));
      return dict;
    }
    default: SLIME_FAIL("template variables: JSON value of type '", j.type_name(), "' has no template equivalent");
  }
}

Value from_json(const slime::json& j) { return convert_json(j); }
Value from_json(const nlohmann::ordered_json& j) { return convert_json(j); }

}  // namespace slime::jinja

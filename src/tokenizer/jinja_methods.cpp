// Python behaviour behind Jinja expressions: arithmetic operators and `in`, the methods templates call on strings,
// dicts and lists (`s.startswith(...)`, `d.items()`, ...), and the global functions of transformers' chat-template
// environment (range, dict, namespace, joiner, raise_exception, strftime_now). String formatting (str % args,
// str.format) is in jinja_format.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "core/error.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace slime::jinja {

void expect_no_arguments(const std::string& function, const CallArgs& args) {
  if (!args.positional.empty() || !args.keywords.empty())
    SLIME_FAIL("TypeError: ", function, "() takes no arguments");
}

BoundArgs::BoundArgs(const std::string& function, const CallArgs& args, std::vector<std::string> params,
                     size_t required)
    : values_(params.size()), given_(params.size(), false) {
  if (args.positional.size() > params.size())
    SLIME_FAIL("TypeError: ", function, "() takes at most ", params.size(), " argument(s) (", args.positional.size(),
               " given)");
  for (size_t i = 0; i < args.positional.size(); ++i) {
    values_[i] = args.positional[i];
    given_[i] = true;
  }
  for (const auto& [key, value] : args.keywords) {
    auto it = std::find(params.begin(), params.end(), key);
    if (it == params.end()) SLIME_FAIL("TypeError: ", function, "() got an unexpected keyword argument '", key, "'");
    size_t i = static_cast<size_t>(it - params.begin());
    if (given_[i]) SLIME_FAIL("TypeError: ", function, "() got multiple values for argument '", key, "'");
    values_[i] = value;
    given_[i] = true;
  }
  for (size_t i = 0; i < required; ++i)
    if (!given_[i]) SLIME_FAIL("TypeError: ", function, "() missing required argument '", params[i], "'");
}

// ---- operators --------------------------------------------------------------------------------------------------

static bool is_int_like(const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Bool; }
// A list or tuple proper: dict views (d.items(), ...) iterate like lists but have no + or *.
static bool is_sequence_value(const Value& v) { return v.is_string() || (v.is_list() && !v.list->view); }
static int64_t int_of(const Value& v) { return v.kind == Kind::Bool ? (v.boolean ? 1 : 0) : v.integer; }

static const char* operator_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "+";
    case BinaryOp::Sub: return "-";
    case BinaryOp::Mul: return "*";
    case BinaryOp::Div: return "/";
    case BinaryOp::FloorDiv: return "//";
    case BinaryOp::Mod: return "%";
    case BinaryOp::Pow: return "** or pow()";
  }
  return "?";
}

static Value repeat(const Value& seq, int64_t times) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value::from_string(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.list->items.begin(), seq.list->items.end());
  return Value::new_list(std::move(out), seq.list->is_tuple);
}

Value binary_operation(BinaryOp op, const Value& a, const Value& b) {
  // str % x is str's own operator, so it runs even when x is Undefined (which str % treats as a mapping).
  if (op == BinaryOp::Mod && a.is_string()) return Value::from_string(percent_format(a.str(), b));
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    bool ints = is_int_like(a) && is_int_like(b);
    int64_t x = ints ? int_of(a) : 0, y = ints ? int_of(b) : 0;
    double fx = as_double(a), fy = as_double(b);
    switch (op) {
      case BinaryOp::Add: return ints ? Value::from_int(x + y) : Value::from_float(fx + fy);
      case BinaryOp::Sub: return ints ? Value::from_int(x - y) : Value::from_float(fx - fy);
      case BinaryOp::Mul: return ints ? Value::from_int(x * y) : Value::from_float(fx * fy);
      case BinaryOp::Div:
        if (fy == 0.0) SLIME_FAIL("ZeroDivisionError: division by zero");
        return Value::from_float(fx / fy);
      case BinaryOp::FloorDiv:
      case BinaryOp::Mod: {
        if (ints) {
          if (y == 0) SLIME_FAIL("ZeroDivisionError: integer division or modulo by zero");
          int64_t q = x / y, r = x % y;
          if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors toward negative infinity
            q -= 1;
            r += y;
          }
          return Value::from_int(op == BinaryOp::FloorDiv ? q : r);
        }
        if (fy == 0.0) SLIME_FAIL("ZeroDivisionError: float ", op == BinaryOp::Mod ? "modulo" : "floor division",
                                  " by zero");
        double r = std::fmod(fx, fy);
        if (r != 0.0 && ((r < 0) != (fy < 0))) r += fy;
        return Value::from_float(op == BinaryOp::FloorDiv ? std::floor(fx / fy) : r);
      }
      case BinaryOp::Pow:
        if (ints && y >= 0) {
          int64_t result = 1, base = x;
          for (int64_t e = y; e > 0; e >>= 1) {
            if ((e & 1) && __builtin_mul_overflow(result, base, &result))
              SLIME_FAIL("OverflowError: ", x, " ** ", y, " does not fit in 64 bits");
            if (e > 1 && __builtin_mul_overflow(base, base, &base))
              SLIME_FAIL("OverflowError: ", x, " ** ", y, " does not fit in 64 bits");
          }
          return Value::from_int(result);
        }
        if (fx == 0.0 && fy < 0) SLIME_FAIL("ZeroDivisionError: 0.0 cannot be raised to a negative power");
        return Value::from_float(std::pow(fx, fy));
    }
  }
  if (op == BinaryOp::Add) {
    if (a.is_string() && b.is_string()) return Value::from_string(a.str() + b.str());
    if (is_sequence_value(a) && is_sequence_value(b) && a.is_list() && b.is_list() &&
        a.list->is_tuple == b.list->is_tuple) {
      std::vector<Value> items = a.list->items;
      items.insert(items.end(), b.list->items.begin(), b.list->items.end());
      return Value::new_list(std::move(items), a.list->is_tuple);
    }
    if (is_sequence_value(a))
      SLIME_FAIL("TypeError: can only concatenate ", type_name(a), " (not \"", type_name(b), "\") to ", type_name(a));
  }
  if (op == BinaryOp::Mul) {
    if (is_sequence_value(a) && is_int_like(b)) return repeat(a, int_of(b));
    if (is_sequence_value(b) && is_int_like(a)) return repeat(b, int_of(a));
  }
  SLIME_FAIL("TypeError: unsupported operand type(s) for ", operator_symbol(op), ": '", type_name(a), "' and '",
             type_name(b), "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::Undefined: return false;
    case Kind::String:
      if (!item.is_string())
        SLIME_FAIL("TypeError: 'in <string>' requires string as left operand, not ", type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::List:
      return std::any_of(container.list->items.begin(), container.list->items.end(),
                         [&](const Value& v) { return values_equal(v, item); });
    case Kind::Dict: return container.dict->find(item) != nullptr;
    case Kind::Generator: {
      std::vector<Value> items = iterate(container);
      return std::any_of(items.begin(), items.end(), [&](const Value& v) { return values_equal(v, item); });
    }
    default: SLIME_FAIL("TypeError: argument of type '", type_name(container), "' is not iterable");
  }
}

// ---- methods ----------------------------------------------------------------------------------------------------

static const std::string& string_arg(const BoundArgs& a, size_t i, const char* method) {
  if (!a.get(i).is_string())
    SLIME_FAIL("TypeError: ", method, "() argument must be str, not ", type_name(a.get(i)));
  return a.get(i).str();
}

static int64_t int_arg(const Value& v, const char* method) {
  if (is_int_like(v)) return int_of(v);
  SLIME_FAIL("TypeError: ", method, "(): an integer is required, not ", type_name(v));
}

// The code-point range [start, end) of a string method's optional start/end arguments, as byte offsets.
static std::pair<size_t, size_t> substring_bounds(const std::string& s, const BoundArgs& a, size_t first) {
  std::vector<char32_t> cps = text::decode(s);
  int64_t n = static_cast<int64_t>(cps.size());
  auto norm = [&](size_t i, int64_t fallback) {
    if (!a.has(i) || a.get(i).is_none()) return fallback;
    int64_t v = int_arg(a.get(i), "slice");
    if (v < 0) v += n;
    return std::clamp<int64_t>(v, 0, n);
  };
  int64_t start = norm(first, 0), end = norm(first + 1, n);
  auto byte_offset = [&](int64_t cp) {
    size_t off = 0;
    for (int64_t k = 0; k < cp; ++k) off += text::encode({cps[static_cast<size_t>(k)]}).size();
    return off;
  };
  if (end < start) end = start;
  return {byte_offset(start), byte_offset(end)};
}

static Value string_method(Interpreter& interp, const std::string& self, const std::string& name, CallArgs& args) {
  const std::string fn = "str." + name;
  auto prefix_test = [&](bool at_start) {
    BoundArgs a(fn, args, {"prefix", "start", "end"}, 1);
    auto [lo, hi] = substring_bounds(self, a, 1);
    std::string part = self.substr(lo, hi - lo);
    std::vector<Value> candidates = a.get(0).is_tuple() ? a.get(0).list->items : std::vector<Value>{a.get(0)};
    for (const Value& c : candidates) {
      if (!c.is_string())
        SLIME_FAIL("TypeError: ", name, " first arg must be str or a tuple of str, not ", type_name(c));
      if (at_start ? text::starts_with(part, c.str()) : text::ends_with(part, c.str())) return Value::from_bool(true);
    }
    return Value::from_bool(false);
  };
  auto strip_chars = [&](bool left, bool right) {
    BoundArgs a(fn, args, {"chars"});
    if (!a.has(0) || a.get(0).is_none()) return Value::from_string(text::strip(self, nullptr, left, right));
    return Value::from_string(text::strip(self, &string_arg(a, 0, name.c_str()), left, right));
  };
  auto split_impl = [&](bool from_right) {
    BoundArgs a(fn, args, {"sep", "maxsplit"});
    int64_t maxsplit = a.has(1) ? int_arg(a.get(1), name.c_str()) : -1;
    const std::string* sep = a.has(0) && !a.get(0).is_none() ? &string_arg(a, 0, name.c_str()) : nullptr;
    std::vector<Value> pieces;
    for (std::string& p : text::split(self, sep, maxsplit, from_right)) pieces.push_back(Value::from_string(std::move(p)));
    return Value::new_list(std::move(pieces));
  };
  auto find_impl = [&](bool from_right, bool raise) {
    BoundArgs a(fn, args, {"sub", "start", "end"}, 1);
    auto [lo, hi] = substring_bounds(self, a, 1);
    std::string part = self.substr(lo, hi - lo);
    int64_t found = text::find(part, string_arg(a, 0, name.c_str()), from_right);
    if (found < 0) {
      if (raise) SLIME_FAIL("ValueError: substring not found");
      return Value::from_int(-1);
    }
    return Value::from_int(found + text::length(self.substr(0, lo)));
  };
  auto predicate = [&](auto&& test) {
    expect_no_arguments(fn, args);
    std::vector<char32_t> cps = text::decode(self);
    return Value::from_bool(!cps.empty() && std::all_of(cps.begin(), cps.end(), test));
  };
  auto justify = [&](char how) {
    BoundArgs a(fn, args, {"width", "fillchar"}, 1);
    int64_t width = int_arg(a.get(0), name.c_str());
    std::string fill = a.has(1) ? string_arg(a, 1, name.c_str()) : " ";
    int64_t pad = width - text::length(self);
    if (pad <= 0) return Value::from_string(self);
    auto fill_n = [&](int64_t n) {
      std::string s;
      for (int64_t k = 0; k < n; ++k) s += fill;
      return s;
    };
    if (how == '<') return Value::from_string(self + fill_n(pad));
    if (how == '>') return Value::from_string(fill_n(pad) + self);
    int64_t left = pad / 2 + (pad & width & 1);  // CPython's centering rule
    return Value::from_string(fill_n(left) + self + fill_n(pad - left));
  };

  if (name == "upper") {
    expect_no_arguments(fn, args);
    return Value::from_string(text::upper(self));
  }
  if (name == "lower" || name == "casefold") {
    expect_no_arguments(fn, args);
    return Value::from_string(text::lower(self));
  }
  if (name == "title") {
    expect_no_arguments(fn, args);
    return Value::from_string(text::python_title(self));
  }
  if (name == "capitalize") {
    expect_no_arguments(fn, args);
    return Value::from_string(text::capitalize(self));
  }
  if (name == "swapcase") {
    expect_no_arguments(fn, args);
    std::string out;
    for (char32_t c : text::decode(self))
      text::append_utf8(out, text::is_upper(c) ? text::to_lower(c) : text::is_lower(c) ? text::to_upper(c) : c);
    return Value::from_string(out);
  }
  if (name == "strip") return strip_chars(true, true);
  if (name == "lstrip") return strip_chars(true, false);
  if (name == "rstrip") return strip_chars(false, true);
  if (name == "split") return split_impl(false);
  if (name == "rsplit") return split_impl(true);
  if (name == "splitlines") {
    BoundArgs a(fn, args, {"keepends"});
    std::vector<Value> lines;
    for (std::string& l : text::splitlines(self, a.has(0) && truthy(a.get(0)))) lines.push_back(Value::from_string(l));
    return Value::new_list(std::move(lines));
  }
  if (name == "startswith") return prefix_test(true);
  if (name == "endswith") return prefix_test(false);
  if (name == "replace") {
    BoundArgs a(fn, args, {"old", "new", "count"}, 2);
    int64_t count = a.has(2) ? int_arg(a.get(2), "replace") : -1;
    return Value::from_string(text::replace(self, string_arg(a, 0, "replace"), string_arg(a, 1, "replace"), count));
  }
  if (name == "find") return find_impl(false, false);
  if (name == "rfind") return find_impl(true, false);
  if (name == "index") return find_impl(false, true);
  if (name == "rindex") return find_impl(true, true);
  if (name == "count") {
    BoundArgs a(fn, args, {"sub", "start", "end"}, 1);
    auto [lo, hi] = substring_bounds(self, a, 1);
    return Value::from_int(text::count(self.substr(lo, hi - lo), string_arg(a, 0, "count")));
  }
  if (name == "join") {
    BoundArgs a(fn, args, {"iterable"}, 1);
    std::string out;
    bool first = true;
    for (const Value& item : iterate(a.get(0))) {
      if (!item.is_string()) SLIME_FAIL("TypeError: sequence item: expected str instance, ", type_name(item), " found");
      if (!first) out += self;
      out += item.str();
      first = false;
    }
    return Value::from_string(std::move(out));
  }
  if (name == "format") return Value::from_string(str_format(interp, self, args));
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") return predicate(text::is_digit);
  if (name == "isalpha") return predicate(text::is_alpha);
  if (name == "isalnum") return predicate([](char32_t c) { return text::is_alpha(c) || text::is_digit(c); });
  if (name == "isspace") return predicate(text::is_space);
  if (name == "isupper" || name == "islower") {
    expect_no_arguments(fn, args);
    bool any_cased = false, ok = true;
    for (char32_t c : text::decode(self)) {
      if (!text::is_cased_letter(c)) continue;
      any_cased = true;
      ok = ok && (name == "isupper" ? text::is_upper(c) : text::is_lower(c));
    }
    return Value::from_bool(any_cased && ok);
  }
  if (name == "center") return justify('^');
  if (name == "ljust") return justify('<');
  if (name == "rjust") return justify('>');
  if (name == "zfill") {
    BoundArgs a(fn, args, {"width"}, 1);
    int64_t pad = int_arg(a.get(0), "zfill") - text::length(self);
    if (pad <= 0) return Value::from_string(self);
    size_t sign = !self.empty() && (self[0] == '-' || self[0] == '+') ? 1 : 0;
    return Value::from_string(self.substr(0, sign) + std::string(static_cast<size_t>(pad), '0') + self.substr(sign));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    BoundArgs a(fn, args, {"affix"}, 1);
    const std::string& affix = string_arg(a, 0, name.c_str());
    if (name == "removeprefix" && text::starts_with(self, affix)) return Value::from_string(self.substr(affix.size()));
    if (name == "removesuffix" && !affix.empty() && text::ends_with(self, affix))
      return Value::from_string(self.substr(0, self.size() - affix.size()));
    return Value::from_string(self);
  }
  if (name == "partition" || name == "rpartition") {
    BoundArgs a(fn, args, {"sep"}, 1);
    const std::string& sep = string_arg(a, 0, name.c_str());
    if (sep.empty()) SLIME_FAIL("ValueError: empty separator");
    size_t hit = name == "partition" ? self.find(sep) : self.rfind(sep);
    std::vector<Value> parts;
    if (hit == std::string::npos) {
      parts = name == "partition"
                  ? std::vector<Value>{Value::from_string(self), Value::from_string(""), Value::from_string("")}
                  : std::vector<Value>{Value::from_string(""), Value::from_string(""), Value::from_string(self)};
    } else {
      parts = {Value::from_string(self.substr(0, hit)), Value::from_string(sep),
               Value::from_string(self.substr(hit + sep.size()))};
    }
    return Value::new_list(std::move(parts), true);
  }
  SLIME_FAIL("AttributeError: 'str' object has no attribute '", name, "'");
}

static const std::vector<std::string> kStringMethods = {
    "upper", "lower", "casefold", "title", "capitalize", "swapcase", "strip", "lstrip", "rstrip", "split", "rsplit",
    "splitlines", "startswith", "endswith", "replace", "find", "rfind", "index", "rindex", "count", "join", "format",
    "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "isupper", "islower", "center", "ljust",
    "rjust", "zfill", "removeprefix", "removesuffix", "partition", "rpartition"};
// Methods that mutate: the immutable sandbox refuses them (transformers renders with ImmutableSandboxedEnvironment).
static const std::vector<std::string> kUnsafeDictMethods = {"clear", "pop", "popitem", "setdefault", "update"};
static const std::vector<std::string> kUnsafeListMethods = {"append", "clear", "pop", "reverse", "insert", "sort",
                                                            "extend", "remove"};

static bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

Value lookup_method(const Value& self, const std::string& name, bool* found) {
  *found = true;
  auto unsafe = [&](const char* type) {
    return Value::undefined("access to attribute '" + name + "' of '" + type + "' object is unsafe.");
  };
  if (self.is_string() && listed(kStringMethods, name)) {
    return Value::new_callable("str." + name, [self, name](Interpreter& interp, CallArgs& args) {
      return string_method(interp, self.str(), name, args);
    });
  }
  if (self.is_dict()) {
    if (listed(kUnsafeDictMethods, name)) return unsafe("dict");
    if (name == "get") {
      return Value::new_callable("dict.get", [self](Interpreter&, CallArgs& args) {
        BoundArgs a("dict.get", args, {"key", "default"}, 1);
        const Value* v = self.dict->find(a.get(0));
        return v ? *v : a.get_or(1, Value::none());
      });
    }
    if (name == "items" || name == "keys" || name == "values" || name == "copy") {
      return Value::new_callable("dict." + name, [self, name](Interpreter&, CallArgs& args) {
        expect_no_arguments("dict." + name, args);
        if (name == "copy") {
          Value copy = Value::new_dict();
          *copy.dict = *self.dict;
          return copy;
        }
        std::vector<Value> out;
        for (const auto& [key, value] : self.dict->entries) {
          if (name == "items") out.push_back(Value::new_list({key, value}, true));
          else out.push_back(name == "keys" ? key : value);
        }
        Value view = Value::new_list(std::move(out));
        view.list->view = name == "items" ? "dict_items" : name == "keys" ? "dict_keys" : "dict_values";
        return view;
      });
    }
  }
  if (self.is_list()) {
    if (!self.list->is_tuple && listed(kUnsafeListMethods, name)) return unsafe("list");
    if (name == "index" || name == "count") {
      return Value::new_callable(type_name(self) + "." + name, [self, name](Interpreter&, CallArgs& args) {
        BoundArgs a(name, args, {"value"}, 1);
        const auto& items = self.list->items;
        int64_t hits = 0;
        for (size_t i = 0; i < items.size(); ++i) {
          if (!values_equal(items[i], a.get(0))) continue;
          if (name == "index") return Value::from_int(static_cast<int64_t>(i));
          ++hits;
        }
        if (name == "index") SLIME_FAIL("ValueError: ", to_repr(a.get(0)), " is not in list");
        return Value::from_int(hits);
      });
    }
  }
  *found = false;
  return Value();
}

// ---- globals ----------------------------------------------------------------------------------------------------

static std::string format_time(const std::string& format, const std::tm& when) {
  if (format.empty()) return "";
  for (size_t size = 256; size <= (1u << 20); size *= 4) {
    std::string buf(size, '\0');
    size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &when);
    if (n > 0) return buf.substr(0, n);
  }
  return "";  // the format only produces empty output (e.g. "%p" in some locales)
}

static Value dict_from_args(const std::string& function, const CallArgs& args) {
  if (args.positional.size() > 1) SLIME_FAIL("TypeError: ", function, " expected at most 1 argument, got ",
                                             args.positional.size());
  Value dict = Value::new_dict();
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict() || source.kind == Kind::Namespace) {
      for (const auto& [key, value] : source.dict->entries) dict.dict->set(key, value);
    } else {
      for (const Value& pair : iterate(source)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) SLIME_FAIL("ValueError: dictionary update sequence element has length ", kv.size(),
                                       "; 2 is required");
        dict.dict->set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keywords) dict.dict->set(key, value);
  return dict;
}

std::unordered_map<std::string, Value> make_globals() {
  std::unordered_map<std::string, Value> g;
  g["range"] = Value::new_callable("range", [](Interpreter&, CallArgs& args) {
    if (!args.keywords.empty()) SLIME_FAIL("TypeError: range() takes no keyword arguments");
    std::vector<int64_t> bounds;
    for (const Value& v : args.positional) bounds.push_back(int_arg(v, "range"));
    int64_t start = 0, stop = 0, step = 1;
    if (bounds.size() == 1) stop = bounds[0];
    else if (bounds.size() == 2 || bounds.size() == 3) {
      start = bounds[0];
      stop = bounds[1];
      if (bounds.size() == 3) step = bounds[2];
    } else {
      SLIME_FAIL("TypeError: range expected 1 to 3 arguments, got ", bounds.size());
    }
    if (step == 0) SLIME_FAIL("ValueError: range() arg 3 must not be zero");
    std::vector<Value> items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (items.size() >= 100000)
        SLIME_FAIL("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      items.push_back(Value::from_int(i));
    }
    return Value::new_list(std::move(items));
  });
  g["dict"] = Value::new_callable("dict", [](Interpreter&, CallArgs& args) { return dict_from_args("dict", args); });
  g["namespace"] = Value::new_callable("namespace", [](Interpreter&, CallArgs& args) {
    Value ns = Value::new_namespace();
    ns.dict = dict_from_args("namespace", args).dict;
    return ns;
  });
  g["joiner"] = Value::new_callable("joiner", [](Interpreter&, CallArgs& args) {
    BoundArgs a("joiner", args, {"sep"});
    std::string sep = a.has(0) ? to_str(a.get(0)) : ", ";
    auto used = std::make_shared<bool>(false);
    return Value::new_callable("joiner", [sep, used](Interpreter&, CallArgs&) {
      if (!*used) {
        *used = true;
        return Value::from_string("");
      }
      return Value::from_string(sep);
    });
  });
  g["raise_exception"] = Value::new_callable("raise_exception", [](Interpreter&, CallArgs& args) -> Value {
    BoundArgs a("raise_exception", args, {"message"}, 1);
    SLIME_FAIL("raise_exception: ", to_str(a.get(0)));
  });
  g["strftime_now"] = Value::new_callable("strftime_now", [](Interpreter& interp, CallArgs& args) {
    BoundArgs a("strftime_now", args, {"format"}, 1);
    if (!a.get(0).is_string()) SLIME_FAIL("TypeError: strftime_now() argument must be str, not ", type_name(a.get(0)));
    std::tm when{};
    if (interp.options().now) {
      when = *interp.options().now;
    } else {
      std::time_t now = std::time(nullptr);
      localtime_r(&now, &when);
    }
    return Value::from_string(format_time(a.get(0).str(), when));
  });
  return g;
}

}  // namespace slime::jinja

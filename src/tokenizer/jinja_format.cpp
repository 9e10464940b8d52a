// Python's string formatting for Jinja templates: `str % args` (also the `format` filter) and str.format() with
// the common part of the format mini-language ([[fill]align][sign][0][width][,][.precision][type]).
#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace slime::jinja {

static bool is_int_like(const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Bool; }
static int64_t int_of(const Value& v) { return v.kind == Kind::Bool ? (v.boolean ? 1 : 0) : v.integer; }

// ---- str % args -------------------------------------------------------------------------------------------------

static int64_t require_integer(const Value& v, char conversion) {
  if (is_int_like(v)) return int_of(v);
  if (v.kind == Kind::Float) return static_cast<int64_t>(v.number);
  SLIME_FAIL("TypeError: %", conversion, " format: a real number is required, not ", type_name(v));
}

std::string percent_format(const std::string& format, const Value& args) {
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  // Python treats any non-tuple argument with __getitem__ (dict, list, Undefined) as a possible mapping: it is
  // still the single positional argument, but arguments left unused are then not an error.
  bool mapping_like = args.is_dict() || (args.is_list() && !args.is_tuple()) || args.is_undefined();
  if (args.is_tuple()) positional = args.list->items;
  else positional.push_back(args);
  if (args.is_dict()) mapping = &args;
  size_t next_arg = 0;
  auto take = [&]() -> const Value& {
    if (next_arg >= positional.size()) SLIME_FAIL("TypeError: not enough arguments for format string");
    return positional[next_arg++];
  };

  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) SLIME_FAIL("ValueError: incomplete format");
    const Value* arg = nullptr;
    Value keyed;
    if (format[i] == '(') {
      size_t close = format.find(')', i);
      if (close == std::string::npos) SLIME_FAIL("ValueError: incomplete format key");
      if (!mapping) SLIME_FAIL("TypeError: format requires a mapping");
      const Value* v = mapping->dict->find(format.substr(i + 1, close - i - 1));
      if (!v) SLIME_FAIL("KeyError: '", format.substr(i + 1, close - i - 1), "'");
      keyed = *v;
      arg = &keyed;
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string("-+ #0").find(format[i]) != std::string::npos) flags += format[i++];
    std::string width, precision;
    while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) width += format[i++];
    if (i < format.size() && format[i] == '.') {
      precision = ".";
      ++i;
      while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) precision += format[i++];
    }
    if (i >= format.size()) SLIME_FAIL("ValueError: incomplete format");
    char conversion = format[i];
    if (conversion == '%') {
      out += '%';
      continue;
    }
    const Value& value = arg ? *arg : take();
    std::string spec = "%" + flags + width + precision;
    char buf[512];
    switch (conversion) {
      case 's': case 'r': case 'a': {
        std::string s = conversion == 's' ? to_str(value) : to_repr(value);
        if (precision.size() > 1) s = text::encode([&] {
          auto cps = text::decode(s);
          cps.resize(std::min(cps.size(), static_cast<size_t>(std::stoul(precision.substr(1)))));
          return cps;
        }());
        int64_t pad = width.empty() ? 0 : std::stoll(width) - text::length(s);
        if (pad > 0) s = flags.find('-') != std::string::npos ? s + std::string(pad, ' ') : std::string(pad, ' ') + s;
        out += s;
        break;
      }
      case 'd': case 'i': case 'u':
        std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), static_cast<long long>(require_integer(value, conversion)));
        out += buf;
        break;
      case 'x': case 'X': case 'o':
        std::snprintf(buf, sizeof buf, (spec + "ll" + conversion).c_str(),
                      static_cast<long long>(require_integer(value, conversion)));
        out += buf;
        break;
      case 'c': {
        if (value.is_string()) out += value.str();
        else text::append_utf8(out, static_cast<char32_t>(require_integer(value, conversion)));
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
        if (!value.is_number()) SLIME_FAIL("TypeError: must be real number, not ", type_name(value));
        std::snprintf(buf, sizeof buf, (spec + conversion).c_str(), as_double(value));
        out += buf;
        break;
      default: SLIME_FAIL("ValueError: unsupported format character '", conversion, "'");
    }
  }
  if (!mapping_like && next_arg < positional.size())
    SLIME_FAIL("TypeError: not all arguments converted during string formatting");
  return out;
}

// ---- str.format -------------------------------------------------------------------------------------------------

// Python's format(value, spec) for the common part of the mini-language: [[fill]align][sign][0][width][,][.prec][type].
static std::string format_spec(const Value& value, const std::string& spec) {
  if (spec.empty()) return to_str(value);
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  std::vector<char32_t> cps = text::decode(spec);
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  if (cps.size() >= 2 && is_align(cps[1])) {  // explicit fill character (any code point) then alignment
    fill.clear();
    text::append_utf8(fill, cps[0]);
    align = static_cast<char>(cps[1]);
    i = 2;
  } else if (is_align(cps[0])) {
    align = static_cast<char>(cps[0]);
    i = 1;
  }
  auto at = [&](size_t k) -> char32_t { return k < cps.size() ? cps[k] : 0; };
  auto is_digit = [](char32_t c) { return c >= '0' && c <= '9'; };
  char32_t sign = 0;
  if (at(i) == '+' || at(i) == '-' || at(i) == ' ') sign = cps[i++];
  if (at(i) == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  int64_t width = 0;
  while (is_digit(at(i))) width = width * 10 + static_cast<int64_t>(cps[i++] - '0');
  bool thousands = false;
  if (at(i) == ',') {
    thousands = true;
    ++i;
  }
  int precision = -1;
  if (at(i) == '.') {
    precision = 0;
    ++i;
    while (is_digit(at(i))) precision = precision * 10 + static_cast<int>(cps[i++] - '0');
  }
  char type = at(i) ? static_cast<char>(cps[i++]) : 0;
  if (i != cps.size()) SLIME_FAIL("ValueError: Invalid format specifier '", spec, "'");

  std::string body;
  bool numeric = value.is_number() && type != 's';
  if (numeric) {
    char buf[512];
    bool as_float = type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G' ||
                    type == '%' || (type == 0 && value.kind == Kind::Float);
    if (as_float) {
      double x = as_double(value) * (type == '%' ? 100.0 : 1.0);
      if (type == 0 && precision < 0) {
        body = float_repr(x);
      } else {
        char conversion = type == 0 ? 'g' : type == '%' ? 'f' : type;
        std::string fmt = "%." + std::to_string(precision < 0 ? 6 : precision) + conversion;
        std::snprintf(buf, sizeof buf, fmt.c_str(), x);
        body = buf;
        if (type == '%') body += "%";
      }
    } else {
      if (value.kind == Kind::Float) SLIME_FAIL("ValueError: Unknown format code '", type, "' for object of type 'float'");
      int64_t n = int_of(value);
      if (type == 'b') {
        uint64_t u = n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
        std::string bits;
        do {
          bits.insert(bits.begin(), static_cast<char>('0' + (u & 1)));
          u >>= 1;
        } while (u);
        body = (n < 0 ? "-" : "") + bits;
      } else {
        const char* fmt = type == 'x' ? "%llx" : type == 'X' ? "%llX" : type == 'o' ? "%llo" : "%lld";
        std::snprintf(buf, sizeof buf, fmt, static_cast<long long>(n));
        body = buf;
      }
    }
    if (thousands) {
      size_t begin = body[0] == '-' ? 1 : 0;
      size_t end = body.find_first_not_of("0123456789", begin);
      if (end == std::string::npos) end = body.size();
      for (int64_t p = static_cast<int64_t>(end) - 3; p > static_cast<int64_t>(begin); p -= 3)
        body.insert(static_cast<size_t>(p), ",");
    }
    if (body[0] != '-' && (sign == '+' || sign == ' ')) body.insert(body.begin(), static_cast<char>(sign));
  } else {
    body = to_str(value);
    if (precision >= 0) {
      std::vector<char32_t> chars = text::decode(body);
      if (chars.size() > static_cast<size_t>(precision)) chars.resize(static_cast<size_t>(precision));
      body = text::encode(chars);
    }
  }
  int64_t pad = width - text::length(body);
  if (pad <= 0) return body;
  if (!align) align = numeric ? '>' : '<';
  auto fill_n = [&](int64_t n) {
    std::string s;
    for (int64_t k = 0; k < n; ++k) s += fill;
    return s;
  };
  switch (align) {
    case '<': return body + fill_n(pad);
    case '^': return fill_n(pad / 2) + body + fill_n(pad - pad / 2);
    case '=': {
      size_t sign_length = (body[0] == '-' || body[0] == '+' || body[0] == ' ') ? 1 : 0;
      return body.substr(0, sign_length) + fill_n(pad) + body.substr(sign_length);
    }
    default: return fill_n(pad) + body;
  }
}

std::string str_format(Interpreter& interp, const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') ++i;
      else SLIME_FAIL("ValueError: Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = format.find('}', i);
    if (close == std::string::npos) SLIME_FAIL("ValueError: Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conversion;
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      conversion = field.substr(bang + 1);
      field.resize(bang);
    }
    size_t name_end = field.find_first_of(".[");
    std::string head = field.substr(0, name_end);
    Value value;
    if (head.empty()) {
      if (auto_index >= args.positional.size())
        SLIME_FAIL("IndexError: Replacement index ", auto_index, " out of range for positional args tuple");
      value = args.positional[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
      size_t index = std::stoul(head);
      if (index >= args.positional.size())
        SLIME_FAIL("IndexError: Replacement index ", index, " out of range for positional args tuple");
      value = args.positional[index];
    } else {
      auto it = std::find_if(args.keywords.begin(), args.keywords.end(), [&](const auto& kw) { return kw.first == head; });
      if (it == args.keywords.end()) SLIME_FAIL("KeyError: '", head, "'");
      value = it->second;
    }
    for (size_t p = name_end; p != std::string::npos && p < field.size();) {  // .attr and [key] chains
      if (field[p] == '.') {
        size_t end = field.find_first_of(".[", p + 1);
        value = interp.get_attribute(value, field.substr(p + 1, end == std::string::npos ? end : end - p - 1));
        p = end;
      } else {
        size_t end = field.find(']', p);
        if (end == std::string::npos) SLIME_FAIL("ValueError: Missing ']' in format string");
        std::string key = field.substr(p + 1, end - p - 1);
        bool numeric_key = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); });
        value = interp.get_item(value, numeric_key ? Value::from_int(std::stoll(key)) : Value::from_string(key));
        p = end + 1;
      }
    }
    if (conversion == "r" || conversion == "a") value = Value::from_string(to_repr(value));
    else if (conversion == "s") value = Value::from_string(to_str(value));
    else if (!conversion.empty()) SLIME_FAIL("ValueError: Unknown conversion specifier ", conversion);
    out += format_spec(value, spec);
  }
  return out;
}

}  // namespace slime::jinja

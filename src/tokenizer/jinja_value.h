// Values of the Jinja interpreter (internal to the jinja_* files): a small Python object model.
// Templates are Python programs in disguise, so values behave as Python's do: None/True/False, ints that are not
// floats, str() and repr() as Python prints them, truthiness, == across int/float/bool, insertion-ordered dicts,
// and Jinja2's Undefined (renders as "", is falsy and iterable-empty, but raises when used in arithmetic, called,
// or has an attribute taken). Lists, dicts and namespaces are shared by reference, as in Python.
// Generators (what map/select/unique/items/batch/reverse return in jinja2) are their own kind: always truthy,
// no len(), iterable once, and an error inside them (say, selecting from an int) surfaces only when iterated.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/io.h"

namespace slime::jinja {

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable, Generator };

struct Value;
struct ListData;
struct DictData;
struct Callable;
class Interpreter;

// Positional and keyword arguments of a call, in Python's sense.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

struct Value {
  Kind kind = Kind::Undefined;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0.0;
  std::shared_ptr<const std::string> text;  // String: the UTF-8 text; Undefined: why it is undefined (may be null)
  std::shared_ptr<ListData> list;           // List (tuples too) and Generator
  std::shared_ptr<DictData> dict;           // Dict and Namespace
  std::shared_ptr<Callable> callable;       // Callable

  Value() = default;
  static Value undefined(std::string hint = {});
  static Value none();
  static Value from_bool(bool b);
  static Value from_int(int64_t i);
  static Value from_float(double f);
  static Value from_string(std::string s);
  static Value new_list(std::vector<Value> items = {}, bool is_tuple = false);
  static Value new_dict();
  static Value new_namespace();
  static Value new_callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);
  // A generator of Python type `type` ("generator", "list_reverseiterator", ...) that will yield `items`, or raise
  // `deferred_error` when iterated if that is set.
  static Value new_generator(const char* type, std::vector<Value> items, std::string deferred_error = {});

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_list() const { return kind == Kind::List; }
  bool is_tuple() const;
  bool is_dict() const { return kind == Kind::Dict; }
  const std::string& str() const { return *text; }  // only for String
  std::string undefined_hint() const;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  const char* view = nullptr;  // List: "dict_items"/... for a dict view, which repr() names; Generator: its type
  bool consumed = false;       // Generator: already iterated (a second iteration yields nothing)
  std::string deferred_error;  // Generator: raised when iterated
};

// Insertion-ordered dict keyed by hashable scalars (str, int, float, bool, None), as Python's dict.
struct DictData {
  std::vector<std::pair<Value, Value>> entries;
  std::unordered_map<std::string, size_t> index;  // hash_key(key) -> position in entries

  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value value);
  void set(const std::string& key, Value value) { set(Value::from_string(key), std::move(value)); }
  size_t size() const { return entries.size(); }
};

struct Callable {
  std::string name;  // shown by repr and in errors
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

// ---- Python semantics -------------------------------------------------------------------------------------------

// Python's type name of a value, as its error messages print it: 'int', 'str', 'NoneType', 'list', 'dict', ...
std::string type_name(const Value& v);
bool truthy(const Value& v);
std::string to_str(const Value& v);   // str(v): Undefined -> "", None -> "None", 1.0 -> "1.0", lists as repr
std::string to_repr(const Value& v);  // repr(v): strings quoted as Python quotes them
std::string repr_string(const std::string& s);
std::string float_repr(double f);     // shortest round-trip form, as Python's repr(float)
bool values_equal(const Value& a, const Value& b);
// Python's a < b for numbers, strings, lists/tuples; throws "'<' not supported between instances of ..." otherwise.
bool values_less(const Value& a, const Value& b, const char* op = "<");
// Key used to index dicts (equal numbers map to one key, as in Python, where hash(1) == hash(1.0) == hash(True)).
std::string hash_key(const Value& key);
// Items an iteration visits: list items, dict keys, string characters, what a generator yields (once);
// Undefined -> none. Throws for others.
std::vector<Value> iterate(const Value& v);
// len(v): strings count code points; throws "object of type 'int' has no len()" for scalars.
int64_t length_of(const Value& v);
// Python's float(v) for numbers (bool and int included).
double as_double(const Value& v);

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson filter calls it.
// indent_unit == nullptr: one line; otherwise newlines with indent_unit repeated per level.
struct JsonStyle {
  bool ensure_ascii = false;
  const std::string* indent_unit = nullptr;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style);

// JSON documents -> values (objects keep their key order as the document type keeps it).
Value from_json(const slime::json& j);
Value from_json(const nlohmann::ordered_json& j);

}  // namespace slime::jinja

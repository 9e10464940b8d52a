// The Jinja tree-walking interpreter (internal to the jinja_* files): scopes, statements, expressions, and the
// entry points builtins use to call back into it (calling values, applying filters and tests, attribute access).
// Scoping follows Jinja2: a for-loop iteration, a macro call and a `with` block get a new scope whose variables
// vanish when it ends (so `set` inside a loop does not leak - templates use namespace() for that); `if` does not.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"

namespace slime::jinja {

class Interpreter {
 public:
  Interpreter(const Program& program, const RenderOptions& options, Value context);

  std::string render();

  // Calls a callable value (macro, global function, bound method); throws for anything else.
  Value call(const Value& callee, CallArgs& args);
  Value apply_filter(const std::string& name, Value input, CallArgs& args);
  bool apply_test(const std::string& name, const Value& value, CallArgs& args);
  // Jinja's sandboxed `obj.name` and `obj[key]`: attribute first then item for `.`, item first then attribute for
  // `[]`; a miss gives an Undefined that says what was missing; mutating methods (list.append, ...) are refused.
  Value get_attribute(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);

  const RenderOptions& options() const { return options_; }

 private:
  struct Scope {
    std::unordered_map<std::string, Value> vars;
    std::shared_ptr<Scope> parent;
  };
  using ScopePtr = std::shared_ptr<Scope>;
  enum class Flow { Normal, Break, Continue };

  Value lookup(const std::string& name) const;
  void assign(const Expr& target, const Value& value);

  Flow exec_body(const Body& body);
  Flow exec(const Stmt& stmt);
  Flow exec_for(const Stmt& stmt);
  Flow exec_if(const Stmt& stmt);
  std::string capture(const Body& body, ScopePtr scope);  // renders `body` in `scope` into a string
  Value make_macro(const Stmt& stmt, const std::string& name, ScopePtr defining_scope);

  Value eval(const Expr& expr);
  Value eval_node(const Expr& expr);
  Value eval_filter_chain(const Expr& filter, const Value& block_input);
  void eval_call_args(const Expr& expr, CallArgs& args);
  Value eval_slice(const Value& obj, const Expr& slice);

  const Program& program_;
  RenderOptions options_;
  ScopePtr scope_;
  std::unordered_map<std::string, Value> globals_;
  std::string* out_ = nullptr;
  std::string output_;
  static constexpr int kMaxMacroDepth = 256;
  int macro_depth_ = 0;
};

// Builtin tables (jinja_filters.cpp, jinja_methods.cpp).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);
Value run_filter(Interpreter& interp, const std::string& name, Value input, CallArgs& args);
bool run_test(Interpreter& interp, const std::string& name, const Value& value, CallArgs& args);
// A bound method of a str/dict/list value, or an Undefined saying why there is none.
Value lookup_method(const Value& self, const std::string& name, bool* found);
std::unordered_map<std::string, Value> make_globals();

// Python's binary operators and `in` (jinja_methods.cpp), shared by the interpreter and filters such as sum.
Value binary_operation(BinaryOp op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
// printf-style formatting of `format % args`, as Python's str % operator (jinja_format.cpp).
std::string percent_format(const std::string& format, const Value& args);
// format.format(*args, **kwargs), as Python's str.format (jinja_format.cpp).
std::string str_format(Interpreter& interp, const std::string& format, const CallArgs& args);

// Raises UndefinedError for an Undefined operand, as Jinja2's Undefined does when used in arithmetic.
[[noreturn]] void fail_undefined(const Value& undefined);

// Throws "TypeError: upper() takes no arguments" when a call that takes none got some.
void expect_no_arguments(const std::string& function, const CallArgs& args);

// Binds a call's arguments to a fixed parameter list, Python style: positionals in order, then keywords by name.
// The first `required` parameters must be given. Errors name the function: "TypeError: join() got an unexpected
// keyword argument 'sep'".
class BoundArgs {
 public:
  BoundArgs(const std::string& function, const CallArgs& args, std::vector<std::string> params, size_t required = 0);
  bool has(size_t i) const { return given_[i]; }
  const Value& get(size_t i) const { return values_[i]; }
  Value get_or(size_t i, Value fallback) const { return given_[i] ? values_[i] : fallback; }

 private:
  std::vector<Value> values_;
  std::vector<bool> given_;
};

}  // namespace slime::jinja

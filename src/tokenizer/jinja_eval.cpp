// The Jinja interpreter: executes statements and evaluates expressions of a parsed template (see jinja_interp.h),
// and the public Template class that ties lexer, parser and interpreter together.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace slime::jinja {

[[noreturn]] void fail_undefined(const Value& undefined) {
  SLIME_FAIL("UndefinedError: ", undefined.undefined_hint());
}

Interpreter::Interpreter(const Program& program, const RenderOptions& options, Value context)
    : program_(program), options_(options), scope_(std::make_shared<Scope>()), globals_(make_globals()) {
  SLIME_ASSERT(context.is_dict(), "template context must be a dict");
  for (const auto& [key, value] : context.dict->entries) {
    SLIME_CHECK(key.is_string(), "template variables: names must be strings, got ", type_name(key));
    scope_->vars[key.str()] = value;
  }
}

std::string Interpreter::render() {
  out_ = &output_;
  exec_body(program_.body);
  return std::move(output_);
}

// ---- names and assignment ---------------------------------------------------------------------------------------

Value Interpreter::lookup(const std::string& name) const {
  for (const Scope* s = scope_.get(); s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const Expr& target, const Value& value) {
  switch (target.kind) {
    case ExprKind::Name: scope_->vars[target.name] = value; return;
    case ExprKind::NamespaceRef: {
      Value ns = lookup(target.name);
      if (ns.kind != Kind::Namespace) SLIME_FAIL("TemplateRuntimeError: cannot assign attribute on non-namespace object");
      ns.dict->set(target.attribute, value);
      return;
    }
    case ExprKind::Tuple: {
      std::vector<Value> items = iterate(value);
      size_t want = target.items.size();
      if (items.size() < want)
        SLIME_FAIL("ValueError: not enough values to unpack (expected ", want, ", got ", items.size(), ")");
      if (items.size() > want) SLIME_FAIL("ValueError: too many values to unpack (expected ", want, ")");
      for (size_t i = 0; i < want; ++i) assign(*target.items[i], items[i]);
      return;
    }
    default: SLIME_FAIL("can't assign to this expression");
  }
}

// ---- statements -------------------------------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec_body(const Body& body) {
  for (const StmtPtr& stmt : body) {
    Flow flow = exec(*stmt);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

std::string Interpreter::capture(const Body& body, ScopePtr scope) {
  std::string buffer;
  std::string* saved_out = out_;
  ScopePtr saved_scope = scope_;
  out_ = &buffer;
  scope_ = std::move(scope);
  try {
    exec_body(body);
  } catch (...) {
    out_ = saved_out;
    scope_ = saved_scope;
    throw;
  }
  out_ = saved_out;
  scope_ = saved_scope;
  return buffer;
}

Interpreter::Flow Interpreter::exec(const Stmt& stmt) {
  try {
    switch (stmt.kind) {
      case StmtKind::Output:
        for (size_t i = 0; i < stmt.exprs.size(); ++i) {
          if (stmt.exprs[i]) *out_ += to_str(eval(*stmt.exprs[i]));
          else *out_ += stmt.data[i];
        }
        return Flow::Normal;
      case StmtKind::If: return exec_if(stmt);
      case StmtKind::For: return exec_for(stmt);
      case StmtKind::Assign: assign(*stmt.target, eval(*stmt.value)); return Flow::Normal;
      case StmtKind::AssignBlock: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope_;
        Value body = Value::from_string(capture(stmt.body, inner));
        assign(*stmt.target, stmt.value ? eval_filter_chain(*stmt.value, body) : body);
        return Flow::Normal;
      }
      case StmtKind::Macro: scope_->vars[stmt.name] = make_macro(stmt, stmt.name, scope_); return Flow::Normal;
      case StmtKind::CallBlock: {
        const Expr& call_expr = *stmt.value;
        Value callee = eval(*call_expr.target);
        CallArgs args;
        eval_call_args(call_expr, args);
        args.keywords.emplace_back("caller", make_macro(stmt, "caller", scope_));
        *out_ += to_str(call(callee, args));
        return Flow::Normal;
      }
      case StmtKind::FilterBlock: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope_;
        Value body = Value::from_string(capture(stmt.body, inner));
        *out_ += to_str(eval_filter_chain(*stmt.value, body));
        return Flow::Normal;
      }
      case StmtKind::With: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope_;
        std::vector<Value> values;
        for (const ExprPtr& e : stmt.exprs) values.push_back(eval(*e));
        ScopePtr saved = scope_;
        scope_ = inner;
        try {
          for (size_t i = 0; i < values.size(); ++i) assign(*stmt.targets[i], values[i]);
          Flow flow = exec_body(stmt.body);
          scope_ = saved;
          return flow;
        } catch (...) {
          scope_ = saved;
          throw;
        }
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
  } catch (const slime::Error& e) {
    throw LocatedError(stmt.line, e.what());
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_if(const Stmt& stmt) {
  for (const auto& [test, body] : stmt.branches)
    if (truthy(eval(*test))) return exec_body(body);
  return exec_body(stmt.else_body);
}

Interpreter::Flow Interpreter::exec_for(const Stmt& stmt) {
  Value iterable = eval(*stmt.value);
  if (iterable.kind == Kind::Namespace) SLIME_FAIL("TypeError: 'Namespace' object is not iterable");
  std::vector<Value> items = iterate(iterable);
  ScopePtr outer = scope_;
  if (stmt.condition) {  // `for x in xs if cond`: filtered before the loop, so loop.length counts what is kept
    std::vector<Value> kept;
    for (const Value& item : items) {
      auto probe = std::make_shared<Scope>();
      probe->parent = outer;
      scope_ = probe;
      try {
        assign(*stmt.target, item);
        if (truthy(eval(*stmt.condition))) kept.push_back(item);
      } catch (...) {
        scope_ = outer;
        throw;
      }
    }
    scope_ = outer;
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>();
    inner->parent = outer;
    scope_ = inner;
    try {
      Flow flow = exec_body(stmt.else_body);
      scope_ = outer;
      return flow == Flow::Normal ? Flow::Normal : flow;
    } catch (...) {
      scope_ = outer;
      throw;
    }
  }
  const int64_t length = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < length; ++i) {
    auto iteration = std::make_shared<Scope>();
    iteration->parent = outer;
    Value loop = Value::new_dict();
    DictData& l = *loop.dict;
    l.set("index", Value::from_int(i + 1));
    l.set("index0", Value::from_int(i));
    l.set("revindex", Value::from_int(length - i));
    l.set("revindex0", Value::from_int(length - i - 1));
    l.set("first", Value::from_bool(i == 0));
    l.set("last", Value::from_bool(i == length - 1));
    l.set("length", Value::from_int(length));
    l.set("depth", Value::from_int(1));
    l.set("depth0", Value::from_int(0));
    l.set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    l.set("nextitem", i + 1 < length ? items[i + 1] : Value::undefined("there is no next item"));
    l.set("cycle", Value::new_callable("loop.cycle", [i](Interpreter&, CallArgs& args) {
            if (args.positional.empty()) SLIME_FAIL("TypeError: no items for cycling given");
            return args.positional[static_cast<size_t>(i) % args.positional.size()];
          }));
    iteration->vars["loop"] = loop;
    scope_ = iteration;
    Flow flow;
    try {
      assign(*stmt.target, items[i]);
      flow = exec_body(stmt.body);
    } catch (...) {
      scope_ = outer;
      throw;
    }
    scope_ = outer;
    if (flow == Flow::Break) break;
  }
  return Flow::Normal;
}

Value Interpreter::make_macro(const Stmt& stmt, const std::string& name, ScopePtr defining_scope) {
  const Stmt* macro = &stmt;
  return Value::new_callable(name, [this, macro, name, defining_scope](Interpreter&, CallArgs& args) -> Value {
    auto scope = std::make_shared<Scope>();
    scope->parent = defining_scope;
    const std::vector<std::string>& names = macro->params.names;
    std::vector<bool> given(names.size(), false);
    std::vector<Value> varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < names.size()) {
        scope->vars[names[i]] = args.positional[i];
        given[i] = true;
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    Value kwargs = Value::new_dict();
    for (auto& [key, value] : args.keywords) {
      auto it = std::find(names.begin(), names.end(), key);
      if (it != names.end()) {
        size_t index = static_cast<size_t>(it - names.begin());
        if (given[index]) SLIME_FAIL("TypeError: macro '", name, "' got multiple values for argument '", key, "'");
        scope->vars[key] = value;
        given[index] = true;
      } else if (key == "caller") {
        scope->vars["caller"] = value;
      } else {
        kwargs.dict->set(key, value);
      }
    }
    scope->vars["varargs"] = Value::new_list(std::move(varargs), true);  // a tuple, as in jinja2
    scope->vars["kwargs"] = kwargs;
    size_t first_default = names.size() - macro->params.defaults.size();
    ScopePtr saved = scope_;
    scope_ = scope;  // defaults may refer to earlier parameters
    try {
      for (size_t i = 0; i < names.size(); ++i) {
        if (given[i]) continue;
        scope->vars[names[i]] = i >= first_default ? eval(*macro->params.defaults[i - first_default])
                                                   : Value::undefined("parameter '" + names[i] + "' was not provided");
      }
    } catch (...) {
      scope_ = saved;
      throw;
    }
    scope_ = saved;
    // Recursive macros (tool-schema renderers) are fine; unbounded recursion is an error, not a stack overflow.
    if (macro_depth_ >= kMaxMacroDepth)
      SLIME_FAIL("RecursionError: macro '", name, "' nested more than ", kMaxMacroDepth, " calls deep");
    ++macro_depth_;
    try {
      Value result = Value::from_string(capture(macro->body, scope));
      --macro_depth_;
      return result;
    } catch (...) {
      --macro_depth_;
      throw;
    }
  });
}

// ---- expressions ------------------------------------------------------------------------------------------------

Value Interpreter::eval(const Expr& expr) {
  try {
    return eval_node(expr);
  } catch (const slime::Error& e) {
    throw LocatedError(expr.line, e.what());
  }
}

void Interpreter::eval_call_args(const Expr& expr, CallArgs& args) {
  for (const ExprPtr& item : expr.items) args.positional.push_back(eval(*item));
  if (expr.star_args)
    for (Value& v : iterate(eval(*expr.star_args))) args.positional.push_back(std::move(v));
  for (const auto& [key, value] : expr.keywords) args.keywords.emplace_back(key, eval(*value));
  if (expr.star_kwargs) {
    Value extra = eval(*expr.star_kwargs);
    if (!extra.is_dict()) SLIME_FAIL("TypeError: argument after ** must be a mapping, not ", type_name(extra));
    for (const auto& [key, value] : extra.dict->entries) {
      if (!key.is_string()) SLIME_FAIL("TypeError: keywords must be strings");
      args.keywords.emplace_back(key.str(), value);
    }
  }
}

Value Interpreter::eval_filter_chain(const Expr& filter, const Value& block_input) {
  Value input = filter.target ? eval_filter_chain(*filter.target, block_input) : block_input;
  CallArgs args;
  eval_call_args(filter, args);
  return apply_filter(filter.name, std::move(input), args);
}

static int64_t slice_index(const Value& v, const char* what) {
  if (v.kind == Kind::Int) return v.integer;
  if (v.kind == Kind::Bool) return v.boolean ? 1 : 0;
  SLIME_FAIL("TypeError: slice indices must be integers or None, got ", type_name(v), " for the ", what);
}

Value Interpreter::eval_slice(const Value& obj, const Expr& slice) {
  if (obj.is_undefined()) fail_undefined(obj);
  Value start = slice.slice_start ? eval(*slice.slice_start) : Value::none();
  Value stop = slice.slice_stop ? eval(*slice.slice_stop) : Value::none();
  Value step_value = slice.third ? eval(*slice.third) : Value::none();
  int64_t step = step_value.is_none() ? 1 : slice_index(step_value, "step");
  if (step == 0) SLIME_FAIL("ValueError: slice step cannot be zero");

  std::vector<char32_t> chars;
  const std::vector<Value>* items = nullptr;
  int64_t n;
  if (obj.is_string()) {
    chars = text::decode(obj.str());
    n = static_cast<int64_t>(chars.size());
  } else if (obj.is_list()) {
    items = &obj.list->items;
    n = static_cast<int64_t>(items->size());
  } else if (obj.is_dict()) {  // jinja2 slices with Python's [] directly, bypassing its getitem
    SLIME_FAIL("TypeError: unhashable type: 'slice'");
  } else {
    SLIME_FAIL("TypeError: '", type_name(obj), "' object is not subscriptable");
  }
  // Python's slice.indices(n).
  auto clamp = [&](const Value& v, int64_t fallback, bool is_start) {
    if (v.is_none()) return fallback;
    int64_t i = slice_index(v, is_start ? "start" : "stop");
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t lo = clamp(start, step > 0 ? 0 : n - 1, true);
  int64_t hi = clamp(stop, step > 0 ? n : -1, false);
  std::vector<int64_t> picks;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) picks.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : picks) text::append_utf8(out, chars[static_cast<size_t>(i)]);
    return Value::from_string(std::move(out));
  }
  std::vector<Value> out;
  out.reserve(picks.size());
  for (int64_t i : picks) out.push_back((*items)[static_cast<size_t>(i)]);
  return Value::new_list(std::move(out), obj.list->is_tuple);
}

static bool compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::Eq: return values_equal(a, b);
    case CompareOp::Ne: return !values_equal(a, b);
    case CompareOp::Lt: return values_less(a, b, "<");
    case CompareOp::Le: return !values_less(b, a, "<=");  // throws for types that do not order, as Python does
    case CompareOp::Gt: return values_less(b, a, ">");
    case CompareOp::Ge: return !values_less(a, b, ">=");
    case CompareOp::In: return contains(b, a);
    case CompareOp::NotIn: return !contains(b, a);
  }
  return false;
}

Value Interpreter::eval_node(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Const: return e.constant;
    case ExprKind::Name: return lookup(e.name);
    case ExprKind::NamespaceRef: SLIME_FAIL("namespace attribute references are only valid as assignment targets");
    case ExprKind::Getattr: return get_attribute(eval(*e.target), e.name);
    case ExprKind::Getitem: {
      Value obj = eval(*e.target);
      if (e.second->kind == ExprKind::Slice) return eval_slice(obj, *e.second);
      return get_item(obj, eval(*e.second));
    }
    case ExprKind::Slice: SLIME_FAIL("a slice is only valid inside []");
    case ExprKind::Call: {
      Value callee = eval(*e.target);
      CallArgs args;
      eval_call_args(e, args);
      return call(callee, args);
    }
    case ExprKind::Filter: {
      Value input = eval(*e.target);
      CallArgs args;
      eval_call_args(e, args);
      return apply_filter(e.name, std::move(input), args);
    }
    case ExprKind::Test: {
      Value value = eval(*e.target);
      CallArgs args;
      eval_call_args(e, args);
      return Value::from_bool(apply_test(e.name, value, args));
    }
    case ExprKind::Not: return Value::from_bool(!truthy(eval(*e.target)));
    case ExprKind::Neg:
    case ExprKind::Pos: {
      Value v = eval(*e.target);
      if (v.is_undefined()) fail_undefined(v);
      bool negate = e.kind == ExprKind::Neg;
      if (v.kind == Kind::Int || v.kind == Kind::Bool) {
        int64_t i = v.kind == Kind::Bool ? v.boolean : v.integer;
        return Value::from_int(negate ? -i : i);
      }
      if (v.kind == Kind::Float) return Value::from_float(negate ? -v.number : v.number);
      SLIME_FAIL("TypeError: bad operand type for unary ", negate ? "-" : "+", ": '", type_name(v), "'");
    }
    case ExprKind::Binary: {
      Value left = eval(*e.target);
      Value right = eval(*e.second);
      return binary_operation(e.binary_op, left, right);
    }
    case ExprKind::And: {
      Value left = eval(*e.target);
      return truthy(left) ? eval(*e.second) : left;
    }
    case ExprKind::Or: {
      Value left = eval(*e.target);
      return truthy(left) ? left : eval(*e.second);
    }
    case ExprKind::Concat: {
      std::string out;
      for (const ExprPtr& part : e.items) out += to_str(eval(*part));
      return Value::from_string(std::move(out));
    }
    case ExprKind::Compare: {
      Value left = eval(*e.target);
      for (const auto& [op, operand] : e.comparisons) {
        Value right = eval(*operand);
        if (!compare(op, left, right)) return Value::from_bool(false);
        left = std::move(right);
      }
      return Value::from_bool(true);
    }
    case ExprKind::CondExpr: {
      if (truthy(eval(*e.target))) return eval(*e.second);
      if (e.third) return eval(*e.third);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const ExprPtr& item : e.items) items.push_back(eval(*item));
      return Value::new_list(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      Value dict = Value::new_dict();
      for (const auto& [key, value] : e.pairs) {
        Value k = eval(*key);
        dict.dict->set(k, eval(*value));
      }
      return dict;
    }
  }
  SLIME_FAIL("unknown expression");
}

// ---- calls, filters, tests, attributes --------------------------------------------------------------------------

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.kind == Kind::Callable) return callee.callable->fn(*this, args);
  if (callee.is_undefined()) fail_undefined(callee);
  SLIME_FAIL("TypeError: '", type_name(callee), "' object is not callable");
}

Value Interpreter::apply_filter(const std::string& name, Value input, CallArgs& args) {
  return run_filter(*this, name, std::move(input), args);
}

bool Interpreter::apply_test(const std::string& name, const Value& value, CallArgs& args) {
  return run_test(*this, name, value, args);
}

static std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  return type_name(obj) + " object";
}

Value Interpreter::get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  bool found = false;
  Value method = lookup_method(obj, name, &found);
  if (found) return method;
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (const Value* v = obj.dict->find(name)) return *v;
  }
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.kind == Kind::Dict) {
    bool hashable = key.kind == Kind::String || key.is_number() || key.is_none() || key.is_tuple();
    if (hashable)
      if (const Value* v = obj.dict->find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.kind == Kind::Int || key.kind == Kind::Bool)) {
    int64_t i = key.kind == Kind::Bool ? key.boolean : key.integer;
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.list->items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.list->items[static_cast<size_t>(i)];
    } else {
      std::vector<char32_t> chars = text::decode(obj.str());
      int64_t n = static_cast<int64_t>(chars.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) {
        std::string one;
        text::append_utf8(one, chars[static_cast<size_t>(i)]);
        return Value::from_string(std::move(one));
      }
    }
  }
  if (key.is_string()) {  // obj['name'] falls back to the attribute, as jinja2's getitem does
    bool found = false;
    Value method = lookup_method(obj, key.str(), &found);
    if (found) return method;
    if (obj.kind == Kind::Namespace)
      if (const Value* v = obj.dict->find(key.str())) return *v;
    return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + key.str() + "'");
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + to_repr(key));
}

// ---- Template ---------------------------------------------------------------------------------------------------

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  try {
    auto program = std::make_shared<Program>(parse(tokenize(source, LexerOptions{}), is_known_filter, is_known_test));
    program_ = std::move(program);
  } catch (const LocatedError& e) {
    SLIME_FAIL(name_, " line ", e.line, ": syntax error: ", e.what());
  }
}

template <class Json>
static std::string render_json(const Program& program, const std::string& name, const Json& context,
                               const RenderOptions& options) {
  SLIME_CHECK(context.is_object(), name, ": render context must be a JSON object, got ", context.type_name());
  try {
    Interpreter interpreter(program, options, from_json(context));
    return interpreter.render();
  } catch (const LocatedError& e) {
    SLIME_FAIL(name, " line ", e.line, ": ", e.what());
  }
}

std::string Template::render(const slime::json& context, const RenderOptions& options) const {
  return render_json(*program_, name_, context, options);
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  return render_json(*program_, name_, context, options);
}

}  // namespace slime::jinja

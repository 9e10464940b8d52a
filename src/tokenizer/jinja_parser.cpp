// Jinja parser: tokens -> syntax tree, a port of the grammar in jinja2's parser.py. Precedence, lowest first:
//   inline if-else < or < and < not < comparisons (== != < <= > >= in, not in) < + - < ~ < * / // % < ** <
//   unary - + < postfix (.attr, [index], (call)) and filters / tests, which bind to the unary operand.
// Statements: if/elif/else, for (tuple targets, `if` filter, else), set (expression, namespace attribute, block),
// macro, call, filter, with, break, continue (loopcontrols), print, and transformers' {% generation %}.
#include <set>

#include "core/error.h"
#include "tokenizer/jinja_ast.h"

namespace slime::jinja {
namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Data: return "template data / text";
    case TokenType::VariableBegin: return "begin of print statement";
    case TokenType::VariableEnd: return "end of print statement";
    case TokenType::BlockBegin: return "begin of statement block";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::Name: return t.text;
    case TokenType::String: return "string";
    case TokenType::Integer: return "integer";
    case TokenType::Float: return "float";
    case TokenType::Operator: return t.text;
    case TokenType::Eof: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  Program parse_program() {
    Program program;
    program.body = subparse({});
    return program;
  }

 private:
  // ---- token stream -------------------------------------------------------------------------------------------

  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_name(const Token& t, const char* name) const { return t.type == TokenType::Name && t.text == name; }
  bool is_op(const Token& t, const char* op) const { return t.type == TokenType::Operator && t.text == op; }
  bool skip_name(const char* name) {
    if (!is_name(current(), name)) return false;
    next();
    return true;
  }
  bool skip_op(const char* op) {
    if (!is_op(current(), op)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const std::string& message, int line) { throw LocatedError(line, message); }
  [[noreturn]] void fail(const std::string& message) { fail(message, current().line); }

  void expect(TokenType type, const char* what) {
    if (current().type != type) unexpected(what);
    next();
  }
  void expect_op(const char* op) {
    if (!is_op(current(), op)) unexpected((std::string("'") + op + "'").c_str());
    next();
  }
  std::string expect_name() {
    if (current().type != TokenType::Name) unexpected("name");
    return next().text;
  }
  [[noreturn]] void unexpected(const char* expected) {
    if (current().type == TokenType::Eof) fail(std::string("unexpected end of template, expected ") + expected + ".");
    fail("expected token " + std::string(expected) + ", got '" + describe(current()) + "'");
  }

  // ---- statements ---------------------------------------------------------------------------------------------

  // Parses until a block tag whose name is in `end_names` (left as the current token) or the end of template.
  Body subparse(const std::vector<std::string>& end_names) {
    Body body;
    StmtPtr output;
    auto flush = [&] {
      if (output) body.push_back(std::move(output));
    };
    auto out = [&]() -> Stmt& {
      if (!output) {
        output = std::make_unique<Stmt>();
        output->kind = StmtKind::Output;
        output->line = current().line;
      }
      return *output;
    };
    if (!end_names.empty()) end_stack_.push_back(end_names);
    while (current().type != TokenType::Eof) {
      const Token& t = current();
      if (t.type == TokenType::Data) {
        out().data.push_back(t.text);
        out().exprs.push_back(nullptr);
        next();
      } else if (t.type == TokenType::VariableBegin) {
        Stmt& o = out();
        next();
        o.data.emplace_back();
        o.exprs.push_back(parse_tuple(false, true, {}, false, false));
        expect(TokenType::VariableEnd, "'end of print statement'");
      } else if (t.type == TokenType::BlockBegin) {
        flush();
        next();
        if (current().type == TokenType::Name) {
          for (const std::string& end : end_names) {
            if (current().text == end) {
              end_stack_.pop_back();
              return body;
            }
          }
        }
        body.push_back(parse_statement());
        expect(TokenType::BlockEnd, "'end of statement block'");
      } else {
        fail("unexpected '" + describe(t) + "'");
      }
    }
    flush();
    if (!end_names.empty()) end_stack_.pop_back();
    return body;
  }

  [[noreturn]] void fail_end_of_template(const std::vector<std::string>& end_names) {
    std::string message = "Unexpected end of template.";
    if (!end_names.empty()) {
      message += " Jinja was looking for the following tags: ";
      for (size_t i = 0; i < end_names.size(); ++i) message += (i ? " or '" : "'") + end_names[i] + "'";
      message += ".";
    }
    if (!tag_stack_.empty()) message += " The innermost block that needs to be closed is '" + tag_stack_.back() + "'.";
    fail(message);
  }

  Body parse_statements(const std::vector<std::string>& end_names, bool drop_needle) {
    skip_op(":");
    expect(TokenType::BlockEnd, "'end of statement block'");
    Body body = subparse(end_names);
    if (current().type == TokenType::Eof) fail_end_of_template(end_names);
    if (drop_needle) next();
    return body;
  }

  StmtPtr make_stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  StmtPtr parse_statement() {
    const Token& t = current();
    if (t.type != TokenType::Name) fail("tag name expected");
    std::string tag = t.text;
    static const std::set<std::string> unsupported = {"block", "extends", "include", "import", "from",
                                                      "autoescape", "do"};
    if (unsupported.count(tag)) fail("the '" + tag + "' tag is not supported by this Jinja interpreter");
    tag_stack_.push_back(tag);
    StmtPtr result;
    if (tag == "for") result = parse_for();
    else if (tag == "if") result = parse_if();
    else if (tag == "set") result = parse_set();
    else if (tag == "macro") result = parse_macro();
    else if (tag == "call") result = parse_call_block();
    else if (tag == "filter") result = parse_filter_block();
    else if (tag == "with") result = parse_with();
    else if (tag == "print") result = parse_print();
    else if (tag == "break" || tag == "continue") result = parse_loop_control();
    else if (tag == "generation") result = parse_generation();
    else fail_unknown_tag(tag);
    tag_stack_.pop_back();
    return result;
  }

  [[noreturn]] void fail_unknown_tag(const std::string& tag) {
    std::string message = "Encountered unknown tag '" + tag + "'.";
    bool expected_somewhere = false;
    for (const auto& ends : end_stack_)
      for (const auto& end : ends) expected_somewhere = expected_somewhere || end == tag;
    if (!end_stack_.empty()) {
      std::string looking;
      for (size_t i = 0; i < end_stack_.back().size(); ++i)
        looking += (i ? " or '" : "'") + end_stack_.back()[i] + "'";
      message += expected_somewhere ? " You probably made a nesting mistake. Jinja is expecting this tag, but "
                                      "currently looking for " + looking + "."
                                    : " Jinja was looking for the following tags: " + looking + ".";
    }
    tag_stack_.pop_back();
    if (!tag_stack_.empty()) message += " The innermost block that needs to be closed is '" + tag_stack_.back() + "'.";
    fail(message);
  }

  StmtPtr parse_for() {
    auto s = make_stmt(StmtKind::For, next().line);
    s->target = parse_assign_target(true, false, {"in"});
    if (!skip_name("in")) unexpected("'in'");
    s->value = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) s->condition = parse_expression(true);
    if (is_name(current(), "recursive")) fail("recursive for loops are not supported by this Jinja interpreter");
    s->body = parse_statements({"endfor", "else"}, false);
    if (next().text == "else") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = make_stmt(StmtKind::If, next().line);
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      const Token& end = next();
      if (end.text == "elif") continue;
      if (end.text == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_set() {
    int line = next().line;
    ExprPtr target = parse_assign_target(true, true, {});
    if (skip_op("=")) {
      auto s = make_stmt(StmtKind::Assign, line);
      s->target = std::move(target);
      s->value = parse_tuple(false, true, {}, false, false);
      return s;
    }
    auto s = make_stmt(StmtKind::AssignBlock, line);
    s->target = std::move(target);
    s->value = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(MacroParams& params) {
    expect_op("(");
    while (!is_op(current(), ")")) {
      if (!params.names.empty()) expect_op(",");
      std::string name = expect_name();
      if (skip_op("=")) params.defaults.push_back(parse_expression(true));
      else if (!params.defaults.empty()) fail("non-default argument follows default argument");
      params.names.push_back(name);
    }
    expect_op(")");
  }

  StmtPtr parse_macro() {
    auto s = make_stmt(StmtKind::Macro, next().line);
    s->name = expect_name();
    parse_signature(s->params);
    s->body = parse_statements({"endmacro"}, true);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = make_stmt(StmtKind::CallBlock, next().line);
    if (is_op(current(), "(")) parse_signature(s->params);
    s->value = parse_expression(true);
    if (s->value->kind != ExprKind::Call) fail("expected call", s->line);
    s->body = parse_statements({"endcall"}, true);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = make_stmt(StmtKind::FilterBlock, next().line);
    s->value = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = make_stmt(StmtKind::With, next().line);
    while (current().type != TokenType::BlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, {}));
      expect_op("=");
      s->exprs.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  StmtPtr parse_print() {
    auto s = make_stmt(StmtKind::Output, next().line);
    while (current().type != TokenType::BlockEnd) {
      if (!s->exprs.empty()) expect_op(",");
      s->data.emplace_back();
      s->exprs.push_back(parse_expression(true));
    }
    return s;
  }

  StmtPtr parse_loop_control() {
    const Token& t = next();
    return make_stmt(t.text == "break" ? StmtKind::Break : StmtKind::Continue, t.line);
  }

  // transformers' AssistantTracker: {% generation %}body{% endgeneration %} renders its body in its own scope.
  StmtPtr parse_generation() {
    auto s = make_stmt(StmtKind::With, next().line);
    s->body = parse_statements({"endgeneration"}, true);
    return s;
  }

  // ---- expressions --------------------------------------------------------------------------------------------

  ExprPtr make_expr(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  ExprPtr parse_assign_target(bool with_tuple, bool with_namespace, const std::vector<std::string>& extra_end) {
    ExprPtr target = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace)
                                : parse_primary(with_namespace);
    auto assignable = [](const Expr& e) { return e.kind == ExprKind::Name || e.kind == ExprKind::NamespaceRef; };
    bool ok = assignable(*target);
    if (target->kind == ExprKind::Tuple) {
      ok = true;
      for (const auto& item : target->items) ok = ok && item->kind == ExprKind::Name;
    }
    if (!ok) fail("can't assign to this expression", target->line);
    return target;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    int line = current().line;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto cond = make_expr(ExprKind::CondExpr, line);
      cond->target = parse_or();
      cond->second = std::move(expr);
      if (skip_name("else")) cond->third = parse_condexpr();
      expr = std::move(cond);
      line = current().line;
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name(current(), "or")) {
      auto node = make_expr(ExprKind::Or, next().line);
      node->target = std::move(left);
      node->second = parse_and();
      left = std::move(node);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name(current(), "and")) {
      auto node = make_expr(ExprKind::And, next().line);
      node->target = std::move(left);
      node->second = parse_not();
      left = std::move(node);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name(current(), "not")) {
      auto node = make_expr(ExprKind::Not, next().line);
      node->target = parse_not();
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = current().line;
    ExprPtr expr = parse_math1();
    std::vector<std::pair<CompareOp, ExprPtr>> ops;
    while (true) {
      const Token& t = current();
      CompareOp op;
      if (t.type == TokenType::Operator && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" ||
                                            t.text == ">" || t.text == ">=")) {
        op = t.text == "==" ? CompareOp::Eq : t.text == "!=" ? CompareOp::Ne : t.text == "<" ? CompareOp::Lt
           : t.text == "<=" ? CompareOp::Le : t.text == ">" ? CompareOp::Gt : CompareOp::Ge;
        next();
      } else if (is_name(t, "in")) {
        op = CompareOp::In;
        next();
      } else if (is_name(t, "not") && is_name(look(), "in")) {
        op = CompareOp::NotIn;
        next();
        next();
      } else {
        break;
      }
      ops.emplace_back(op, parse_math1());
    }
    if (ops.empty()) return expr;
    auto node = make_expr(ExprKind::Compare, line);
    node->target = std::move(expr);
    node->comparisons = std::move(ops);
    return node;
  }

  ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, int line) {
    auto node = make_expr(ExprKind::Binary, line);
    node->binary_op = op;
    node->target = std::move(left);
    node->second = std::move(right);
    return node;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op(current(), "+") || is_op(current(), "-")) {
      const Token& t = next();
      BinaryOp op = t.text == "+" ? BinaryOp::Add : BinaryOp::Sub;
      left = binary(op, std::move(left), parse_concat(), t.line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = current().line;
    ExprPtr first = parse_math2();
    if (!is_op(current(), "~")) return first;
    auto node = make_expr(ExprKind::Concat, line);
    node->items.push_back(std::move(first));
    while (skip_op("~")) node->items.push_back(parse_math2());
    return node;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op(current(), "*") || is_op(current(), "/") || is_op(current(), "//") || is_op(current(), "%")) {
      const Token& t = next();
      BinaryOp op = t.text == "*" ? BinaryOp::Mul : t.text == "/" ? BinaryOp::Div : t.text == "//" ? BinaryOp::FloorDiv
                                                                                                 : BinaryOp::Mod;
      left = binary(op, std::move(left), parse_pow(), t.line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op(current(), "**")) {
      int line = next().line;
      left = binary(BinaryOp::Pow, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (is_op(current(), "-") || is_op(current(), "+")) {
      const Token& t = next();
      node = make_expr(t.text == "-" ? ExprKind::Neg : ExprKind::Pos, t.line);
      node->target = parse_unary(false);
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    const Token& t = current();
    if (t.type == TokenType::Name) {
      next();
      if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
        auto e = make_expr(ExprKind::Const, t.line);
        e->constant = Value::from_bool(t.text == "true" || t.text == "True");
        return e;
      }
      if (t.text == "none" || t.text == "None") {
        auto e = make_expr(ExprKind::Const, t.line);
        e->constant = Value::none();
        return e;
      }
      if (with_namespace && is_op(current(), ".")) {
        next();
        auto e = make_expr(ExprKind::NamespaceRef, t.line);
        e->name = t.text;
        e->attribute = expect_name();
        return e;
      }
      auto e = make_expr(ExprKind::Name, t.line);
      e->name = t.text;
      return e;
    }
    if (t.type == TokenType::String) {
      auto e = make_expr(ExprKind::Const, t.line);
      std::string joined;
      while (current().type == TokenType::String) joined += next().text;  // "a" "b" == "ab"
      e->constant = Value::from_string(std::move(joined));
      return e;
    }
    if (t.type == TokenType::Integer || t.type == TokenType::Float) {
      next();
      auto e = make_expr(ExprKind::Const, t.line);
      e->constant = t.type == TokenType::Integer ? Value::from_int(t.integer) : Value::from_float(t.number);
      return e;
    }
    if (is_op(t, "(")) {
      next();
      ExprPtr e = parse_tuple(false, true, {}, true, false);
      expect_op(")");
      return e;
    }
    if (is_op(t, "[")) return parse_list();
    if (is_op(t, "{")) return parse_dict();
    if (t.type == TokenType::Eof) fail("unexpected end of template");
    fail("unexpected '" + describe(t) + "'");
  }

  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    const Token& t = current();
    if (t.type == TokenType::VariableEnd || t.type == TokenType::BlockEnd || is_op(t, ")")) return true;
    for (const std::string& name : extra_end)
      if (is_name(t, name.c_str())) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parentheses, bool with_namespace) {
    int line = current().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(current(), ",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) fail("Expected an expression, got '" + describe(current()) + "'");
    }
    auto node = make_expr(ExprKind::Tuple, line);
    node->items = std::move(args);
    return node;
  }

  ExprPtr parse_list() {
    auto node = make_expr(ExprKind::List, next().line);
    while (!is_op(current(), "]")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op(current(), "]")) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
    auto node = make_expr(ExprKind::Dict, next().line);
    while (!is_op(current(), "}")) {
      if (!node->pairs.empty()) expect_op(",");
      if (is_op(current(), "}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      node->pairs.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(current(), ".") || is_op(current(), "[")) node = parse_subscript(std::move(node));
      else if (is_op(current(), "(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op(current(), "|")) node = parse_filter(std::move(node), false);
      else if (is_name(current(), "is")) node = parse_test(std::move(node));
      else if (is_op(current(), "(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    if (t.text == ".") {
      const Token& attr = next();
      if (attr.type == TokenType::Name) {
        auto e = make_expr(ExprKind::Getattr, t.line);
        e->target = std::move(node);
        e->name = attr.text;
        return e;
      }
      if (attr.type != TokenType::Integer) fail("expected name or number", attr.line);
      auto e = make_expr(ExprKind::Getitem, t.line);
      e->target = std::move(node);
      e->second = make_expr(ExprKind::Const, attr.line);
      e->second->constant = Value::from_int(attr.integer);
      return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op(current(), "]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make_expr(ExprKind::Getitem, t.line);
    e->target = std::move(node);
    if (args.size() == 1) {
      e->second = std::move(args[0]);
    } else {
      e->second = make_expr(ExprKind::Tuple, t.line);
      e->second->items = std::move(args);
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    int line = current().line;
    ExprPtr start;
    if (!skip_op(":")) {
      ExprPtr node = parse_expression(true);
      if (!is_op(current(), ":")) return node;
      next();
      start = std::move(node);
    }
    auto slice = make_expr(ExprKind::Slice, line);
    slice->slice_start = std::move(start);
    if (!is_op(current(), ":") && !is_op(current(), "]") && !is_op(current(), ","))
      slice->slice_stop = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op(current(), "]") && !is_op(current(), ",")) slice->third = parse_expression(true);
    }
    return slice;
  }

  void parse_call_args(Expr& call) {
    int line = current().line;
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression", line);
    };
    while (!is_op(current(), ")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(current(), ")")) break;  // trailing comma
      }
      if (is_op(current(), "*")) {
        ensure(!call.star_args && !call.star_kwargs);
        next();
        call.star_args = parse_expression(true);
      } else if (is_op(current(), "**")) {
        ensure(!call.star_kwargs);
        next();
        call.star_kwargs = parse_expression(true);
      } else if (current().type == TokenType::Name && is_op(look(), "=")) {
        ensure(!call.star_kwargs);
        std::string key = next().text;
        next();
        call.keywords.emplace_back(key, parse_expression(true));
      } else {
        ensure(!call.star_args && !call.star_kwargs && call.keywords.empty());
        call.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto call = make_expr(ExprKind::Call, current().line);
    call->target = std::move(node);
    parse_call_args(*call);
    return call;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  // `node | f1(args) | f2 ...`; node is null for {% filter %} blocks and {% set x | f %}.
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op(current(), "|") || start_inline) {
      if (!start_inline) next();
      int line = current().line;
      std::string name = parse_dotted_name();
        auto filter = make_expr(ExprKind::Filter, line);
      filter->name = name;
      filter->target = std::move(node);
      if (is_op(current(), "(")) parse_call_args(*filter);
      node = std::move(filter);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    int line = next().line;  // `is`
    bool negated = skip_name("not");
    std::string name = parse_dotted_name();
    auto test = make_expr(ExprKind::Test, line);
    test->name = name;
    test->target = std::move(node);
    const Token& t = current();
    if (is_op(t, "(")) {
      parse_call_args(*test);
    } else if ((t.type == TokenType::Name || t.type == TokenType::String || t.type == TokenType::Integer ||
                t.type == TokenType::Float || is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
      if (is_name(t, "is")) fail("You cannot chain multiple tests with is");
      test->items.push_back(parse_postfix(parse_primary(false)));
    }
    if (!negated) return test;
    auto negation = make_expr(ExprKind::Not, line);
    negation->target = std::move(test);
    return negation;
  }

  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  std::vector<std::string> tag_stack_;
  std::vector<std::vector<std::string>> end_stack_;
};

}  // namespace

Program parse(const std::vector<Token>& tokens, bool (*known_filter)(const std::string&),
              bool (*known_test)(const std::string&)) {
  Program program = Parser(tokens).parse_program();
  check_filter_and_test_names(program, known_filter, known_test);
  return program;
}

}  // namespace slime::jinja

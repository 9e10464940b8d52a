// Compile-time check of filter and test names, as jinja2's compiler does it after parsing (see below).
#include "tokenizer/jinja_ast.h"

namespace slime::jinja {
namespace {

// jinja2 rejects unknown filters and tests when it compiles a template, except in "soft frames": the test and
// the direct body of an if statement and all of an inline if-expression, where the error is deferred to when the
// filter or test is evaluated (so `{% if parse_args %}{{ s | from_json }}{% endif %}` compiles where from_json is
// missing). Loops, macros, call/filter/with/set blocks open ordinary frames again.
class NameChecker {
 public:
  NameChecker(bool (*known_filter)(const std::string&), bool (*known_test)(const std::string&))
      : known_filter_(known_filter), known_test_(known_test) {}

  void body(const Body& statements, bool soft) {
    for (const StmtPtr& s : statements) statement(*s, soft);
  }

 private:
  void statement(const Stmt& s, bool soft) {
    switch (s.kind) {
      case StmtKind::Output:
        for (const ExprPtr& e : s.exprs) expr(e.get(), soft);
        break;
      case StmtKind::If:
        for (const auto& [test, branch] : s.branches) {
          expr(test.get(), true);
          body(branch, true);
        }
        body(s.else_body, true);
        break;
      case StmtKind::For:
        expr(s.value.get(), soft);
        expr(s.condition.get(), false);
        body(s.body, false);
        body(s.else_body, false);
        break;
      case StmtKind::Assign: expr(s.value.get(), soft); break;
      case StmtKind::AssignBlock:
      case StmtKind::FilterBlock:
        body(s.body, false);
        expr(s.value.get(), false);
        break;
      case StmtKind::Macro:
        for (const ExprPtr& d : s.params.defaults) expr(d.get(), false);
        body(s.body, false);
        break;
      case StmtKind::CallBlock:
        for (const ExprPtr& d : s.params.defaults) expr(d.get(), false);
        expr(s.value.get(), soft);
        body(s.body, false);
        break;
      case StmtKind::With:
        for (const ExprPtr& e : s.exprs) expr(e.get(), false);
        body(s.body, false);
        break;
      case StmtKind::Break:
      case StmtKind::Continue: break;
    }
  }

  void expr(const Expr* e, bool soft) {
    if (!e) return;
    if (e->kind == ExprKind::CondExpr) soft = true;
    if (!soft && e->kind == ExprKind::Filter && !known_filter_(e->name))
      throw LocatedError(e->line, "No filter named '" + e->name + "'.");
    if (!soft && e->kind == ExprKind::Test && !known_test_(e->name))
      throw LocatedError(e->line, "No test named '" + e->name + "'.");
    expr(e->target.get(), soft);
    expr(e->second.get(), soft);
    expr(e->third.get(), soft);
    expr(e->slice_start.get(), soft);
    expr(e->slice_stop.get(), soft);
    expr(e->star_args.get(), soft);
    expr(e->star_kwargs.get(), soft);
    for (const ExprPtr& item : e->items) expr(item.get(), soft);
    for (const auto& kw : e->keywords) expr(kw.second.get(), soft);
    for (const auto& [key, value] : e->pairs) {
      expr(key.get(), soft);
      expr(value.get(), soft);
    }
    for (const auto& cmp : e->comparisons) expr(cmp.second.get(), soft);
  }

  bool (*known_filter_)(const std::string&);
  bool (*known_test_)(const std::string&);
};

}  // namespace

void check_filter_and_test_names(const Program& program, bool (*known_filter)(const std::string&),
                                 bool (*known_test)(const std::string&)) {
  NameChecker(known_filter, known_test).body(program.body, false);
}

}  // namespace slime::jinja

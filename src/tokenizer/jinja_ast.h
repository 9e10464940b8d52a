// Tokens and syntax tree of the Jinja interpreter (internal to the jinja_* files), with the lexer and parser
// entry points. The grammar and precedence follow jinja2's parser.py; whitespace control (`-`, `+`, trim_blocks,
// lstrip_blocks, the dropped trailing newline) follows jinja2's lexer.py.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace slime::jinja {

// An error with the template line it happened on; Template turns it into slime::Error naming the template.
struct LocatedError : std::runtime_error {
  LocatedError(int line, const std::string& message) : std::runtime_error(message), line(line) {}
  int line;
};

// ---- tokens -----------------------------------------------------------------------------------------------------

enum class TokenType { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float,
                       Operator, Eof };

struct Token {
  TokenType type = TokenType::Eof;
  std::string text;  // Data: the text; Name; String: unescaped value; Operator: the operator
  int64_t integer = 0;
  double number = 0.0;
  int line = 1;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

std::vector<Token> tokenize(const std::string& source, const LexerOptions& options);

// ---- expressions ------------------------------------------------------------------------------------------------

enum class ExprKind { Const, Name, NamespaceRef, Getattr, Getitem, Slice, Call, Filter, Test, Not, Neg, Pos,
                      Binary, And, Or, Concat, Compare, CondExpr, List, Tuple, Dict };
enum class BinaryOp { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::Const;
  int line = 1;
  Value constant;                  // Const
  std::string name;                // Name, NamespaceRef (the namespace), Getattr (attribute), Filter/Test name
  std::string attribute;           // NamespaceRef: the attribute assigned
  ExprPtr target;                  // Getattr/Getitem/Call/Filter/Test/Not/Neg/Pos: the operand; CondExpr: test
  ExprPtr second;                  // Getitem: the index; Binary/And/Or: right side; CondExpr: value if true
  ExprPtr third;                   // CondExpr: value if false (may be null); Slice: step
  ExprPtr slice_start, slice_stop;  // Slice (each may be null)
  BinaryOp binary_op = BinaryOp::Add;
  std::vector<ExprPtr> items;      // List/Tuple items, Concat parts, call/filter/test positional arguments
  std::vector<std::pair<std::string, ExprPtr>> keywords;  // call/filter/test keyword arguments
  ExprPtr star_args, star_kwargs;  // *args, **kwargs of a call (may be null)
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;         // Dict
  std::vector<std::pair<CompareOp, ExprPtr>> comparisons;  // Compare: `target op1 x1 op2 x2 ...`
};

// ---- statements -------------------------------------------------------------------------------------------------

enum class StmtKind { Output, If, For, Assign, AssignBlock, Macro, CallBlock, FilterBlock, With, Break, Continue };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParams {
  std::vector<std::string> names;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() names
};

struct Stmt {
  StmtKind kind = StmtKind::Output;
  int line = 1;
  std::vector<std::string> data;       // Output: literal text pieces, paired with exprs (null expr = text)
  std::vector<ExprPtr> exprs;          // Output: expressions to print; With: the values
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (test, body) for if and each elif
  Body body;                           // For/Macro/CallBlock/FilterBlock/AssignBlock/With body
  Body else_body;                      // If/For else
  ExprPtr target;                      // For/Assign/AssignBlock target; With targets go in `targets`
  std::vector<ExprPtr> targets;        // With
  ExprPtr value;                       // For: iterable; Assign: value; CallBlock: the call; FilterBlock/AssignBlock:
                                       // the filter chain applied to the body (target slot = null)
  ExprPtr condition;                   // For: `if` filter
  std::string name;                    // Macro name
  MacroParams params;                  // Macro/CallBlock
};

struct Program {
  Body body;
};

// Parses tokens into a program; throws LocatedError on syntax errors. `known_filter`/`known_test` reject unknown
// names at parse time, as jinja2 does when it compiles a template (check_filter_and_test_names).
Program parse(const std::vector<Token>& tokens, bool (*known_filter)(const std::string&),
              bool (*known_test)(const std::string&));
void check_filter_and_test_names(const Program& program, bool (*known_filter)(const std::string&),
                                 bool (*known_test)(const std::string&));

}  // namespace slime::jinja

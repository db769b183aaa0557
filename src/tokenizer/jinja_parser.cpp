// Jinja parser: tokens -> Program. Expression precedence follows jinja2/parser.py, loosest first:
//   cond (x if c else y) < or < and < not < compare (== != < > <= >= in, not in; chained)
//   < + - < ~ < * / // % < ** < unary - + < primary with postfix (. [] ()) then filters `|` and tests `is`.
#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "tokenizer/jinja_ast.h"

namespace rlhf::jinja {
namespace {

struct Parser {
  const std::vector<Token>& toks;
  std::string name;
  size_t i = 0;
  int loop_depth = 0;  // for-loop bodies around the statement being parsed (a macro body starts again at 0)
  // Nesting of expressions and statements: each level is a recursion here and when rendering, so a template
  // nested deeper than any real one ("((((...", 100,000 nested ifs; fuzz_jinja) is an error, not a stack overflow.
  static constexpr int kMaxNesting = 128;
  static constexpr int kMaxExprDepth = 512;  // the tree of one expression, chains of operators included
  int nesting = 0;
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nesting > kMaxNesting) {
        --p.nesting;
        p.error("the template nests more than " + std::to_string(kMaxNesting) + " levels deep");
      }
    }
    ~Nest() { --p.nesting; }
  };
  // Depth of an expression tree, counted up to `limit` (the walk stops there, so it cannot overflow the stack).
  static int tree_depth(const Expr* e, int limit) {
    if (!e || limit <= 0) return 0;
    int d = 0;
    for (const Expr* x : {e->a.get(), e->b.get(), e->c.get()}) d = std::max(d, tree_depth(x, limit - 1));
    for (const auto& x : e->items) d = std::max(d, tree_depth(x.get(), limit - 1));
    for (const auto& kv : e->kwargs) d = std::max(d, tree_depth(kv.second.get(), limit - 1));
    return d + 1;
  }

  const Token& cur() const { return toks[i]; }
  // Python's ints are unbounded; ours are 64-bit: a larger literal is an error (std::stoll would throw
  // std::out_of_range, which is not a template error; found by fuzz_jinja).
  int64_t integer_literal(const Token& t) const {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(t.value.c_str(), &end, 10);
    if (errno == ERANGE) fail(name, " line ", t.line, ": integer literal ", t.value, " does not fit in 64 bits");
    return v;
  }
  const Token& peek(size_t k = 1) const { return toks[std::min(i + k, toks.size() - 1)]; }
  [[noreturn]] void error(const std::string& msg) const { fail(name, " line ", cur().line, ": ", msg); }

  bool is_op(const char* op) const { return cur().kind == Tok::op && cur().value == op; }
  bool is_name(const char* n) const { return cur().kind == Tok::name && cur().value == n; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++i;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++i;
    return true;
  }
  std::string describe(const Token& t) const {
    switch (t.kind) {
      case Tok::text: return "template text";
      case Tok::var_begin: return "'{{'";
      case Tok::var_end: return "'}}'";
      case Tok::block_begin: return "'{%'";
      case Tok::block_end: return "'%}'";
      case Tok::eof: return "end of template";
      case Tok::string: return "string literal";
      default: return "'" + t.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error(std::string("expected '") + op + "', found " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != Tok::name) error("expected a name, found " + describe(cur()));
    return toks[i++].value;
  }
  void expect(Tok k, const char* what) {
    if (cur().kind != k) error(std::string("expected ") + what + ", found " + describe(cur()));
    ++i;
  }

  ExprPtr node(Expr::Kind k, int line) {
    auto e = std::make_shared<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  // ------------------------------------------------------------ expressions
  ExprPtr parse_expression(bool with_cond = true) {
    Nest nest(*this);
    int line = cur().line;
    ExprPtr e = parse_or();
    if (with_cond && is_name("if")) {
      ++i;
      auto c = node(Expr::Kind::cond, line);
      c->a = e;
      c->b = parse_or();
      if (accept_name("else")) c->c = parse_expression();
      e = c;
    }
    // Long operator chains (1+1+1+...) build deep trees without nesting: bounded at the outermost expression.
    if (nesting == 1 && tree_depth(e.get(), kMaxExprDepth + 1) > kMaxExprDepth)
      fail(name, " line ", line, ": an expression more than ", kMaxExprDepth, " operators deep");
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b, int line) {
    auto e = node(Expr::Kind::binary, line);
    e->name = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      int line = cur().line;
      ++i;
      e = binary("or", e, parse_and(), line);
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      int line = cur().line;
      ++i;
      e = binary("and", e, parse_not(), line);
    }
    return e;
  }
  ExprPtr parse_not() {
    Nest nest(*this);
    if (is_name("not")) {
      auto e = node(Expr::Kind::unary, cur().line);
      ++i;
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> rest;
    while (true) {
      std::string op;
      if (cur().kind == Tok::op &&
          (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))) {
        op = cur().value;
        ++i;
      } else if (is_name("in")) {
        op = "in";
        ++i;
      } else if (is_name("not") && peek().kind == Tok::name && peek().value == "in") {
        op = "not in";
        i += 2;
      } else {
        break;
      }
      ops.push_back(op);
      rest.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = node(Expr::Kind::compare, line);
    e->a = first;
    e->ops = ops;
    e->items = rest;
    return e;
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().value;
      int line = cur().line;
      ++i;
      e = binary(op, e, parse_concat(), line);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      int line = cur().line;
      ++i;
      e = binary("~", e, parse_math2(), line);
    }
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().value;
      int line = cur().line;
      ++i;
      e = binary(op, e, parse_pow(), line);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      int line = cur().line;
      ++i;
      e = binary("**", e, parse_unary(true), line);
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(Expr::Kind::unary, cur().line);
      e->name = cur().value;
      ++i;
      e->a = parse_unary(false);
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filter_expr(e);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    if (t.kind == Tok::name) {
      ++i;
      if (t.value == "true" || t.value == "True") return literal(true, t.line);
      if (t.value == "false" || t.value == "False") return literal(false, t.line);
      if (t.value == "none" || t.value == "None") return literal(nullptr, t.line);
      auto e = node(Expr::Kind::name, t.line);
      e->name = t.value;
      return e;
    }
    if (t.kind == Tok::string) {
      std::string s = t.value;
      ++i;
      while (cur().kind == Tok::string) s += toks[i++].value;  // adjacent literals concatenate
      return literal(s, t.line);
    }
    if (t.kind == Tok::integer) {
      ++i;
      return literal(integer_literal(t), t.line);
    }
    if (t.kind == Tok::floating) {
      ++i;
      return literal(std::strtod(t.value.c_str(), nullptr), t.line);  // 1e999 is inf, as in Python
    }
    if (is_op("(")) {
      ++i;
      if (accept_op(")")) return node(Expr::Kind::list, t.line);  // empty tuple
      ExprPtr e = parse_expression();
      if (is_op(",")) {  // tuple
        auto tup = node(Expr::Kind::list, t.line);
        tup->items.push_back(e);
        while (accept_op(",")) {
          if (is_op(")")) break;
          tup->items.push_back(parse_expression());
        }
        e = tup;
      }
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      ++i;
      auto e = node(Expr::Kind::list, t.line);
      while (!is_op("]")) {
        e->items.push_back(parse_expression());
        if (!accept_op(",")) break;
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      ++i;
      auto e = node(Expr::Kind::dict, t.line);
      while (!is_op("}")) {
        e->items.push_back(parse_expression());
        expect_op(":");
        e->items.push_back(parse_expression());
        if (!accept_op(",")) break;
      }
      expect_op("}");
      return e;
    }
    error("unexpected " + describe(t) + " in an expression");
  }

  ExprPtr literal(Json v, int line) {
    auto e = node(Expr::Kind::literal, line);
    e->value = std::move(v);
    return e;
  }

  // (positional..., name=value..., *args, **kwargs) as jinja2's parse_call_args: at most one *args and one
  // **kwargs, nothing positional after either, no keyword after **kwargs.
  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (accept_op("*")) {
        if (e.b || e.c) error("invalid syntax for function call expression (a second *args, or *args after **kwargs)");
        e.b = parse_expression();
      } else if (accept_op("**")) {
        if (e.c) error("invalid syntax for function call expression (a second **kwargs)");
        e.c = parse_expression();
      } else if (cur().kind == Tok::name && peek().kind == Tok::op && peek().value == "=") {
        if (e.c) error("invalid syntax for function call expression (a keyword argument after **kwargs)");
        std::string key = cur().value;
        i += 2;
        e.kwargs.emplace_back(key, parse_expression());
      } else {
        if (e.b || e.c || !e.kwargs.empty())
          error("invalid syntax for function call expression (a positional argument after keyword, *args or **kwargs)");
        e.items.push_back(parse_expression());
      }
      if (!accept_op(",")) break;
    }
    expect_op(")");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        int line = cur().line;
        ++i;
        auto a = node(Expr::Kind::attr, line);
        a->a = e;
        if (cur().kind == Tok::integer) {  // foo.0 is foo[0] in jinja
          a->kind = Expr::Kind::item;
          a->b = literal(integer_literal(cur()), line);
          ++i;
        } else {
          a->name = expect_name();
        }
        e = a;
      } else if (is_op("[")) {
        int line = cur().line;
        ++i;
        ExprPtr parts[3];
        int n = 0;
        bool is_slice = false;
        while (true) {
          if (is_op(":")) {
            is_slice = true;
            ++i;
            if (++n > 2) error("a slice takes at most 3 parts");
            continue;
          }
          if (is_op("]")) break;
          if (parts[n]) error("expected ':' or ']' in a subscript");
          parts[n] = parse_expression();
        }
        expect_op("]");
        if (is_slice) {
          auto s = node(Expr::Kind::slice, line);
          s->a = e;
          s->items = {parts[0], parts[1], parts[2]};
          e = s;
        } else {
          if (!parts[0]) error("empty subscript '[]'");
          auto s = node(Expr::Kind::item, line);
          s->a = e;
          s->b = parts[0];
          e = s;
        }
      } else if (is_op("(")) {
        auto c = node(Expr::Kind::call, cur().line);
        c->a = e;
        parse_call_args(*c);
        e = c;
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        ++i;
        e = parse_filter(e);
      } else if (is_name("is")) {
        int line = cur().line;
        ++i;
        auto t = node(Expr::Kind::test, line);
        t->a = e;
        t->negate = accept_name("not");
        t->name = expect_name();
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().kind == Tok::name || cur().kind == Tok::string || cur().kind == Tok::integer ||
                    cur().kind == Tok::floating || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("is") && !is_name("if") &&
                   !is_name("in") && !is_name("not")) {
          t->items.push_back(parse_postfix(parse_primary()));
        }
        e = t;
      } else if (is_op("(")) {
        auto c = node(Expr::Kind::call, cur().line);
        c->a = e;
        parse_call_args(*c);
        e = c;
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter(ExprPtr input) {
    auto f = node(Expr::Kind::filter, cur().line);
    f->a = input;
    f->name = expect_name();
    while (accept_op(".")) f->name += "." + expect_name();
    if (is_op("(")) parse_call_args(*f);
    return f;
  }

  // ------------------------------------------------------------ statements
  StmtPtr stmt(Stmt::Kind k, int line) {
    auto s = std::make_shared<Stmt>();
    s->kind = k;
    s->line = line;
    return s;
  }

  // Parses statements until a block tag whose keyword is in `ends`; leaves i at that keyword.
  Body parse_body(const std::vector<std::string>& ends, const std::string& opener, int open_line) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.kind == Tok::eof) {
        if (ends.empty()) return body;
        fail(name, " line ", open_line, ": '", opener, "' is never closed (expected '", ends.back(), "')");
      }
      if (t.kind == Tok::text) {
        auto s = stmt(Stmt::Kind::text, t.line);
        s->text = t.value;
        body.push_back(s);
        ++i;
      } else if (t.kind == Tok::var_begin) {
        ++i;
        auto s = stmt(Stmt::Kind::output, t.line);
        s->expr = parse_expression();
        expect(Tok::var_end, "'}}'");
        body.push_back(s);
      } else if (t.kind == Tok::block_begin) {
        ++i;
        if (cur().kind != Tok::name) error("expected a statement keyword after '{%'");
        const std::string& kw = cur().value;
        for (const auto& e : ends)
          if (kw == e) return body;
        body.push_back(parse_statement());
      } else {
        error("unexpected " + describe(t));
      }
    }
  }

  void end_tag() { expect(Tok::block_end, "'%}'"); }

  StmtPtr parse_statement() {
    Nest nest(*this);
    const Token& kw = cur();
    int line = kw.line;
    std::string k = kw.value;
    ++i;
    if (k == "if") {
      auto s = stmt(Stmt::Kind::if_, line);
      ExprPtr cond = parse_expression();
      end_tag();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, "if", line);
        s->branches.emplace_back(cond, b);
        std::string e = toks[i++].value;
        if (e == "elif") {
          cond = parse_expression();
          end_tag();
          continue;
        }
        if (e == "else") {
          end_tag();
          s->else_body = parse_body({"endif"}, "if", line);
          ++i;
        }
        end_tag();
        return s;
      }
    }
    if (k == "for") {
      auto s = stmt(Stmt::Kind::for_, line);
      s->targets.push_back(expect_name());
      while (accept_op(",")) s->targets.push_back(expect_name());
      if (!accept_name("in")) error("expected 'in' in a for statement");
      s->expr = parse_expression(false);
      if (accept_name("if")) s->loop_filter = parse_expression(false);
      if (is_name("recursive")) error("'for ... recursive' is not supported");
      end_tag();
      ++loop_depth;
      s->body = parse_body({"else", "endfor"}, "for", line);
      --loop_depth;
      if (toks[i++].value == "else") {
        end_tag();
        s->else_body = parse_body({"endfor"}, "for", line);
        ++i;
      }
      end_tag();
      return s;
    }
    if (k == "set") {
      std::vector<std::string> targets{expect_name()};
      bool attr = false;
      if (accept_op(".")) {
        targets.push_back(expect_name());
        attr = true;
      } else {
        while (accept_op(",")) targets.push_back(expect_name());
      }
      if (accept_op("=")) {
        auto s = stmt(Stmt::Kind::set, line);
        s->targets = targets;
        s->attr_set = attr;
        s->expr = parse_expression();
        if (is_op(",")) {  // a, b = 1, 2
          auto tup = node(Expr::Kind::list, line);
          tup->items.push_back(s->expr);
          while (accept_op(",")) tup->items.push_back(parse_expression());
          s->expr = tup;
        }
        end_tag();
        return s;
      }
      if (attr || targets.size() != 1) error("a block set '{% set x %}' takes a single name");
      auto s = stmt(Stmt::Kind::set_block, line);
      s->targets = targets;
      if (accept_op("|")) s->expr = parse_filter(nullptr);
      while (s->expr && accept_op("|")) s->expr = parse_filter(s->expr);  // {% set x | upper | trim %}
      end_tag();
      s->body = parse_body({"endset"}, "set", line);
      ++i;
      end_tag();
      return s;
    }
    if (k == "macro" || k == "call") {
      auto m = std::make_shared<MacroDef>();
      auto s = stmt(k == "macro" ? Stmt::Kind::macro : Stmt::Kind::call_block, line);
      if (k == "macro") m->name = expect_name();
      if (k == "macro" || is_op("(")) {
        expect_op("(");
        while (!is_op(")")) {
          std::string p = expect_name();
          ExprPtr def;
          if (accept_op("=")) def = parse_expression();
          m->params.emplace_back(p, def);
          if (!accept_op(",")) break;
        }
        expect_op(")");
      }
      if (k == "call") {
        s->expr = parse_expression();
        if (s->expr->kind != Expr::Kind::call) error("'{% call %}' needs a macro call, e.g. {% call m(x) %}");
      }
      end_tag();
      const std::string endkw = k == "macro" ? "endmacro" : "endcall";
      const int outer_depth = loop_depth;  // a loop around a macro is not one that its body can break out of
      loop_depth = 0;
      m->body = parse_body({endkw}, k, line);
      loop_depth = outer_depth;
      ++i;
      end_tag();
      s->macro = m;
      return s;
    }
    if (k == "break" || k == "continue") {
      if (loop_depth == 0) fail(name, " line ", line, ": '", k, "' outside loop (hint: it must be inside a {% for %} body)");
      end_tag();
      return stmt(k == "break" ? Stmt::Kind::break_ : Stmt::Kind::continue_, line);
    }
    if (k == "generation") {  // transformers' AssistantTracker extension: renders its body unchanged
      end_tag();
      auto s = stmt(Stmt::Kind::generation, line);
      s->body = parse_body({"endgeneration"}, "generation", line);
      ++i;
      end_tag();
      return s;
    }
    if (k == "filter") {
      auto s = stmt(Stmt::Kind::filter_block, line);
      s->expr = parse_filter(nullptr);
      while (accept_op("|")) s->expr = parse_filter(s->expr);
      end_tag();
      s->body = parse_body({"endfilter"}, "filter", line);
      ++i;
      end_tag();
      return s;
    }
    fail(name, " line ", line, ": unsupported statement '{% ", k,
         " %}' (supported: if, for, set, macro, call, filter, generation, break, continue)");
  }
};

}  // namespace

std::shared_ptr<Program> parse(const std::vector<Token>& tokens, const std::string& name) {
  Parser p{tokens, name};
  auto prog = std::make_shared<Program>();
  prog->body = p.parse_body({}, "", 1);
  return prog;
}

}  // namespace rlhf::jinja

// Internals of the Jinja interpreter (jinja.h): tokens, the syntax tree, and runtime values.
//   jinja_lexer.cpp     source -> tokens (whitespace control, trim_blocks, lstrip_blocks applied here)
//   jinja_parser.cpp    tokens -> Program (statements and expressions)
//   jinja_eval.cpp      Program + context -> string
//   jinja_builtins.cpp  filters, tests, methods, global functions, Python-style str()/repr()/json.dumps
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "tokenizer/jinja.h"

namespace rlhf::jinja {

// ---------------------------------------------------------------- tokens
enum class Tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof };

struct Token {
  Tok kind;
  std::string value;  // text data, name, decoded string literal, number spelling, or operator
  int line;
};

std::vector<Token> lex(const std::string& source, const std::string& name);

// ---------------------------------------------------------------- values
struct Value;
struct Namespace {
  std::vector<std::pair<std::string, std::shared_ptr<Value>>> attrs;  // insertion order
  std::shared_ptr<Value> find(const std::string& key) const;
  void set(const std::string& key, const Value& v);
};

struct CallArgs;
struct Evaluator;
using Function = std::function<Value(Evaluator&, CallArgs&, int line)>;

struct Value {
  enum class Kind { undefined, json, ns, func };
  Kind kind = Kind::undefined;
  Json j;                          // kind == json
  std::shared_ptr<Namespace> ns;   // kind == ns
  std::shared_ptr<Function> fn;    // kind == func
  std::string undefined_name;      // kind == undefined: what was looked up, for error messages
  // kind == json, j an array: the Python type when jinja2 would hand over an iterator or a view instead of a list
  // ("generator" from select/map/items/unique, "list_reverseiterator" from reverse, "range", "dict_items", ...).
  // It iterates like the list, but tojson raises on it (json.dumps does), and an iterator has no len() and is
  // always true (a generator object is truthy even when it yields nothing). Empty for an ordinary value.
  std::string lazy;
  // kind == json, j a string: a markupsafe.Markup (from |safe, |escape). `+` with a Markup escapes the other
  // string operand (Markup.__add__/__radd__) and gives a Markup; `~` and every other operation give a plain str.
  bool markup = false;

  Value() = default;
  Value(Json v) : kind(Kind::json), j(std::move(v)) {}  // NOLINT: implicit on purpose
  static Value undefined(std::string what) {
    Value v;
    v.undefined_name = std::move(what);
    return v;
  }
  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_json() const { return kind == Kind::json; }
  bool is_string() const { return kind == Kind::json && j.is_string(); }
  bool is_iterator() const { return lazy == "generator" || lazy == "list_reverseiterator"; }
  static Value lazy_list(Json list, std::string py_type) {
    Value v(std::move(list));
    v.lazy = std::move(py_type);
    return v;
  }
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  // Takes keyword `name` or positional `pos`; undefined when absent.
  Value get(size_t pos, const char* name) const;
  bool has(size_t pos, const char* name) const { return !get(pos, name).is_undefined(); }
};

// ---------------------------------------------------------------- expressions
struct Expr;
using ExprPtr = std::shared_ptr<Expr>;
struct Stmt;
using StmtPtr = std::shared_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Expr {
  enum class Kind {
    literal,    // value
    name,       // name
    list,       // items (also tuples)
    dict,       // items as key, value, key, value...
    attr,       // a.name
    item,       // a[b]
    slice,      // a[b:c:d] (null ExprPtr for an omitted part)
    call,       // a(items..., kwargs, *b, **c)   (b, c null when absent; also for filters and tests)
    filter,     // a | name(items..., kwargs)   (a null for a filter block)
    test,       // a is [not] name(items...)
    unary,      // op a   (not, -, +)
    binary,     // a op b (and, or, + - * / // % ** ~, in, not in)
    compare,    // a op1 b op2 c ... (ops, items = operands after a)
    cond,       // a if b else c
  };
  Kind kind;
  int line;
  Json value;
  std::string name;  // name / attribute / filter / test / operator
  bool negate = false;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

// ---------------------------------------------------------------- statements
struct MacroDef {
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
  Body body;
};

struct Stmt {
  enum class Kind { text, output, if_, for_, set, set_block, macro, call_block, break_, continue_, generation, filter_block };
  Kind kind;
  int line;
  std::string text;                                   // text
  ExprPtr expr;                                       // output, set value, for iterable, call_block call, filter
  std::vector<std::pair<ExprPtr, Body>> branches;     // if/elif (cond, body)
  Body body, else_body;                               // for, if else, set_block, macro, call_block, generation
  std::vector<std::string> targets;                   // for / set targets; set "ns.attr" -> {"ns", "attr"} w/ attr_set
  bool attr_set = false;                              // set ns.attr = ...
  ExprPtr loop_filter;                                // for x in y if cond
  std::shared_ptr<MacroDef> macro;                    // macro, call_block (caller)
};

struct Program {
  Body body;
};

std::shared_ptr<Program> parse(const std::vector<Token>& tokens, const std::string& name);

// ---------------------------------------------------------------- evaluation
struct Frame {
  std::map<std::string, Value> vars;
};

struct Evaluator {
  std::string name;  // template name for messages
  std::vector<std::shared_ptr<Frame>> frames;  // frames[0]: globals + context
  std::vector<std::weak_ptr<Frame>> made;      // every frame of this render (new_frame), emptied when it ends

  std::shared_ptr<Frame> new_frame();

  // Bounds on one render, so that no template can hang or exhaust a trainer (fuzz_jinja): loop iterations in
  // all, nested macro calls, and the size of the output and of any string built by repetition. Real chat
  // templates use a few hundred iterations and kilobytes.
  static constexpr int64_t kMaxSteps = 10'000'000;
  static constexpr int kMaxMacroDepth = 100;
  static constexpr size_t kMaxString = size_t(64) << 20;
  int64_t steps = 0;
  int macro_depth = 0;
  // Counts one loop iteration; errors past kMaxSteps or when `out` has grown past kMaxString.
  void step(int line, const std::string& out);

  [[noreturn]] void error(int line, const std::string& msg) const;
  Value lookup(const std::string& var) const;
  void assign(const std::string& var, Value v);

  Value eval(const Expr& e);
  enum class Flow { normal, break_, continue_ };
  Flow exec(const Body& body, std::string& out);
  // Runs macro `m` in a new scope on top of `scope`: the frames in effect where the macro was defined (jinja2
  // macros are closures: they see the variables of the loop or template around their definition, as they are
  // when the macro is called).
  Value call_macro(const MacroDef& m, CallArgs& args, int line, const std::vector<std::shared_ptr<Frame>>& scope);
  // Positional, keyword, *args and **kwargs arguments of a call, filter or test expression.
  CallArgs eval_args(const Expr& e);
};

// builtins (jinja_builtins.cpp)
bool truthy(const Value& v);
std::string to_str(const Value& v);            // Python str()
std::string py_repr(const Json& j);            // Python repr()
std::string py_json_dumps(const Json& j, int indent, bool sort_keys);  // json.dumps(ensure_ascii=False)
Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args, int line);
bool apply_test(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args, int line);
Value call_method(Evaluator& ev, const Value& obj, const std::string& name, CallArgs& args, int line);
void install_globals(Frame& globals);
// markupsafe.escape: a Markup stays as it is; anything else becomes str() with & < > " ' escaped, as a Markup.
Value html_escape(const Value& v);
bool values_equal(const Value& a, const Value& b);

// Dict keys. A JSON object key is a string; a Python dict key may be any hashable scalar. Keys that are not
// strings are stored as "\xff" + their JSON spelling ("\xff" never starts valid UTF-8, so no string key can
// collide): {1: 'a'} holds the key "\xff1". dict_key encodes (a list or dict key is an error: unhashable),
// key_value decodes. Python merges 1, 1.0 and True into one key; here they stay distinct keys.
std::string dict_key(Evaluator& ev, const Value& key, int line);
Json key_value(const std::string& stored);
// The stored key `key` would have as a lookup, or nullopt for a key that cannot be in any dict (undefined, lists).
std::optional<std::string> lookup_key(const Value& key);

// UTF-8 helpers: Python indexes strings by code point.
std::vector<std::string> utf8_chars(const std::string& s);

}  // namespace rlhf::jinja

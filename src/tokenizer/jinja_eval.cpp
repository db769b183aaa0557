// Jinja evaluator: walks the Program with a stack of scopes and appends to the output string.
// Scoping as in jinja2: a for-loop body is a new scope each iteration (so `set` inside a loop does not leak out,
// which is why templates use namespace()); if-blocks share the enclosing scope; a macro (and a {% call %} body)
// is a closure: its parameters and `caller` on top of the scopes where it was defined, read when it is called.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tokenizer/jinja_ast.h"

namespace rlhf::jinja {

std::shared_ptr<Value> Namespace::find(const std::string& key) const {
  for (const auto& kv : attrs)
    if (kv.first == key) return kv.second;
  return nullptr;
}

void Namespace::set(const std::string& key, const Value& v) {
  for (auto& kv : attrs)
    if (kv.first == key) {
      *kv.second = v;
      return;
    }
  attrs.emplace_back(key, std::make_shared<Value>(v));
}

Value CallArgs::get(size_t pos, const char* name) const {
  for (const auto& kv : kwargs)
    if (kv.first == name) return kv.second;
  if (pos < args.size()) return args[pos];
  return Value::undefined(name);
}

void Evaluator::error(int line, const std::string& msg) const { fail(name, " line ", line, ": ", msg); }

Value Evaluator::lookup(const std::string& var) const {
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    auto f = (*it)->vars.find(var);
    if (f != (*it)->vars.end()) return f->second;
  }
  return Value::undefined(var);
}

void Evaluator::assign(const std::string& var, Value v) { frames.back()->vars[var] = std::move(v); }

void Evaluator::step(int line, const std::string& out) {
  if (++steps > kMaxSteps)
    error(line, "the template ran more than " + std::to_string(kMaxSteps) + " loop iterations (a runaway loop?)");
  if (out.size() > kMaxString)
    error(line, "the template's output exceeds " + std::to_string(kMaxString >> 20) + " MiB");
}

std::shared_ptr<Frame> Evaluator::new_frame() {
  auto f = std::make_shared<Frame>();
  // Forget the frames already freed, so that a long loop keeps this list short.
  if (made.size() >= 64 && made.size() % 64 == 0)
    made.erase(std::remove_if(made.begin(), made.end(), [](const auto& w) { return w.expired(); }), made.end());
  made.push_back(f);
  return f;
}

namespace {

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return "Undefined";
    case Value::Kind::ns: return "Namespace";
    case Value::Kind::func: return "function";
    default: break;
  }
  const Json& j = v.j;
  if (j.is_null()) return "NoneType";
  if (j.is_boolean()) return "bool";
  if (j.is_number_integer()) return "int";
  if (j.is_number()) return "float";
  if (j.is_string()) return "str";
  if (j.is_array()) return "list";
  return "dict";
}

bool is_num(const Value& v) { return v.is_json() && v.j.is_number(); }
bool is_int(const Value& v) { return v.is_json() && (v.j.is_number_integer() || v.j.is_boolean()); }
double as_double(const Value& v) { return v.j.is_boolean() ? (v.j.get<bool>() ? 1.0 : 0.0) : v.j.get<double>(); }
int64_t as_int(const Value& v) { return v.j.is_boolean() ? (v.j.get<bool>() ? 1 : 0) : v.j.get<int64_t>(); }

// Python sequence index with negative wrap-around; -1 when out of range.
int64_t wrap_index(int64_t idx, size_t n) {
  if (idx < 0) idx += static_cast<int64_t>(n);
  return (idx < 0 || idx >= static_cast<int64_t>(n)) ? -1 : idx;
}

// Python slice semantics (start, stop, step possibly absent).
std::vector<size_t> slice_indices(size_t n, const Value& a, const Value& b, const Value& c, int line,
                                  const Evaluator& ev) {
  int64_t len = static_cast<int64_t>(n);
  if (!(c.is_undefined() || c.j.is_null()) && !is_int(c))
    ev.error(line, std::string("slice indices must be integers, got ") + type_name(c));
  int64_t step = c.is_undefined() || c.j.is_null() ? 1 : as_int(c);
  if (step == 0) ev.error(line, "slice step cannot be zero");
  auto norm = [&](const Value& v, int64_t dflt) -> int64_t {
    if (v.is_undefined() || v.j.is_null()) return dflt;
    if (!is_int(v)) ev.error(line, std::string("slice indices must be integers, got ") + type_name(v));
    int64_t x = as_int(v);
    if (x < 0) x += len;
    if (step > 0) return std::clamp<int64_t>(x, 0, len);
    return std::clamp<int64_t>(x, -1, len - 1);
  };
  int64_t start = norm(a, step > 0 ? 0 : len - 1);
  int64_t stop = norm(b, step > 0 ? len : -1);
  std::vector<size_t> out;
  if (step > 0)
    for (int64_t k = start; k < stop; k += step) out.push_back(static_cast<size_t>(k));
  else
    for (int64_t k = start; k > stop; k += step) out.push_back(static_cast<size_t>(k));
  return out;
}

// The elements a for-loop walks: list items, dict keys, string characters.
std::vector<Value> iterate(const Value& v, int line, const Evaluator& ev) {
  std::vector<Value> out;
  if (v.is_undefined()) return out;
  if (v.kind != Value::Kind::json) ev.error(line, std::string("'") + type_name(v) + "' object is not iterable");
  if (v.j.is_array()) {
    for (const auto& x : v.j) out.emplace_back(x);
  } else if (v.j.is_object()) {
    for (auto it = v.j.begin(); it != v.j.end(); ++it) out.emplace_back(key_value(it.key()));
  } else if (v.j.is_string()) {
    for (auto& ch : utf8_chars(v.j.get<std::string>())) out.emplace_back(Json(ch));
  } else {
    ev.error(line, std::string("'") + type_name(v) + "' object is not iterable");
  }
  return out;
}

Json require_json(const Value& v, int line, const Evaluator& ev, const char* what) {
  if (v.is_undefined()) ev.error(line, "'" + v.undefined_name + "' is undefined (used in " + what + ")");
  if (!v.is_json()) ev.error(line, std::string("a ") + type_name(v) + " cannot be used in " + what);
  return v.j;
}

Value arith(const std::string& op, const Value& l, const Value& r, int line, const Evaluator& ev) {
  if (l.is_undefined() || r.is_undefined()) {
    const Value& u = l.is_undefined() ? l : r;
    ev.error(line, "'" + u.undefined_name + "' is undefined (operand of '" + op + "')");
  }
  auto bad = [&]() {
    ev.error(line, std::string("unsupported operand types for ") + op + ": '" + type_name(l) + "' and '" +
                       type_name(r) + "'");
  };
  if (!l.is_json() || !r.is_json()) bad();
  if (op == "+") {
    if (l.j.is_string() && r.j.is_string()) {
      if (!l.markup && !r.markup) return Json(l.j.get<std::string>() + r.j.get<std::string>());
      // Markup.__add__ / __radd__: the plain operand is HTML-escaped, the result is Markup
      Value m(Json(html_escape(l).j.get<std::string>() + html_escape(r).j.get<std::string>()));
      m.markup = true;
      return m;
    }
    if (l.j.is_array() && r.j.is_array()) {
      Json out = l.j;
      for (const auto& x : r.j) out.push_back(x);
      return out;
    }
  }
  if (op == "*" && ((l.j.is_string() && is_int(r)) || (is_int(l) && r.j.is_string()))) {
    std::string s = l.j.is_string() ? l.j.get<std::string>() : r.j.get<std::string>();
    int64_t n = l.j.is_string() ? as_int(r) : as_int(l);
    if (n > 0 && !s.empty() && static_cast<uint64_t>(n) > Evaluator::kMaxString / s.size())
      ev.error(line, "string repetition of " + std::to_string(s.size()) + " bytes x " + std::to_string(n) +
                         " exceeds " + std::to_string(Evaluator::kMaxString >> 20) + " MiB");
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += s;
    return Json(out);
  }
  if (!(is_num(l) || l.j.is_boolean()) || !(is_num(r) || r.j.is_boolean())) bad();
  bool ints = is_int(l) && is_int(r);
  if (ints && op != "/") {
    // Python's ints do not overflow; ours are 64-bit, and an overflow is an error instead of undefined behaviour
    // (found by fuzz_jinja under UBSan).
    int64_t a = as_int(l), b = as_int(r), out = 0;
    auto overflow = [&] {
      ev.error(line, "integer overflow in " + std::to_string(a) + " " + op + " " + std::to_string(b) +
                         " (template integers are 64-bit)");
    };
    if (op == "+") return __builtin_add_overflow(a, b, &out) ? (overflow(), Json()) : Json(out);
    if (op == "-") return __builtin_sub_overflow(a, b, &out) ? (overflow(), Json()) : Json(out);
    if (op == "*") return __builtin_mul_overflow(a, b, &out) ? (overflow(), Json()) : Json(out);
    if (op == "//" || op == "%") {
      if (b == 0) ev.error(line, "integer division or modulo by zero");
      if (a == std::numeric_limits<int64_t>::min() && b == -1) overflow();
      int64_t q = a / b;
      if ((a % b != 0) && ((a < 0) != (b < 0))) --q;  // floor
      return op == "//" ? Json(q) : Json(a - q * b);
    }
    if (op == "**") {
      if (b < 0) return Json(std::pow(static_cast<double>(a), static_cast<double>(b)));
      int64_t p = 1, base = a;  // by squaring: log2(b) steps, each checked
      for (int64_t e = b; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(p, base, &p)) overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Json(p);
    }
  }
  double a = as_double(l), b = as_double(r);
  if (op == "+") return Json(a + b);
  if (op == "-") return Json(a - b);
  if (op == "*") return Json(a * b);
  if (op == "**") return Json(std::pow(a, b));
  if (b == 0) ev.error(line, "division by zero");
  if (op == "/") return Json(a / b);
  if (op == "//") return Json(std::floor(a / b));
  if (op == "%") return Json(a - std::floor(a / b) * b);
  bad();
  return Value();
}

bool contains(const Value& container, const Value& item, int line, const Evaluator& ev) {
  if (container.is_undefined()) return false;
  Json c = require_json(container, line, ev, "'in'");
  if (c.is_string()) {
    if (!item.is_string()) ev.error(line, std::string("'in <string>' requires a string, got ") + type_name(item));
    return c.get<std::string>().find(item.j.get<std::string>()) != std::string::npos;
  }
  if (c.is_array()) {
    for (const auto& x : c)
      if (values_equal(Value(x), item)) return true;
    return false;
  }
  if (c.is_object()) {
    auto k = lookup_key(item);
    return k && c.contains(*k);
  }
  ev.error(line, std::string("argument of type '") + type_name(container) + "' is not iterable");
}

bool compare(const std::string& op, const Value& l, const Value& r, int line, const Evaluator& ev) {
  if (op == "==") return values_equal(l, r);
  if (op == "!=") return !values_equal(l, r);
  if (op == "in") return contains(r, l, line, ev);
  if (op == "not in") return !contains(r, l, line, ev);
  int c = 0;
  if ((is_num(l) || (l.is_json() && l.j.is_boolean())) && (is_num(r) || (r.is_json() && r.j.is_boolean()))) {
    double a = as_double(l), b = as_double(r);
    c = a < b ? -1 : a > b ? 1 : 0;
  } else if (l.is_string() && r.is_string()) {
    c = l.j.get<std::string>().compare(r.j.get<std::string>());  // byte order == code point order in UTF-8
  } else {
    ev.error(line, "'" + op + "' not supported between '" + type_name(l) + "' and '" + type_name(r) + "'");
  }
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  return c >= 0;
}

// jinja2's LoopContext: index0 ... nextitem, and loop.cycle(a, b, ...) = the argument at index0 modulo their count.
Value loop_object(const std::vector<Value>& items, size_t k) {
  const size_t n = items.size();
  Value loop;
  loop.kind = Value::Kind::ns;
  loop.ns = std::make_shared<Namespace>();
  Namespace& ns = *loop.ns;
  ns.set("index0", Json(k));
  ns.set("index", Json(k + 1));
  ns.set("revindex", Json(n - k));
  ns.set("revindex0", Json(n - k - 1));
  ns.set("first", Json(k == 0));
  ns.set("last", Json(k + 1 == n));
  ns.set("length", Json(n));
  ns.set("depth", Json(1));
  ns.set("depth0", Json(0));
  if (k > 0) ns.set("previtem", items[k - 1]);
  if (k + 1 < n) ns.set("nextitem", items[k + 1]);
  Value cycle;
  cycle.kind = Value::Kind::func;
  cycle.fn = std::make_shared<Function>([k](Evaluator& ev, CallArgs& a, int line) -> Value {
    if (a.args.empty()) ev.error(line, "loop.cycle() needs at least one argument");
    return a.args[k % a.args.size()];
  });
  ns.set("cycle", cycle);
  return loop;
}

}  // namespace

CallArgs Evaluator::eval_args(const Expr& e) {
  CallArgs args;
  for (const auto& x : e.items) args.args.push_back(eval(*x));
  if (e.b) {  // *args: any iterable
    Value star = eval(*e.b);
    if (star.is_undefined()) error(e.line, "'" + star.undefined_name + "' is undefined (passed as *args)");
    for (auto& v : iterate(star, e.line, *this)) args.args.push_back(std::move(v));
  }
  for (const auto& kv : e.kwargs) args.kwargs.emplace_back(kv.first, eval(*kv.second));
  if (e.c) {  // **kwargs: a dict with string keys
    Value dstar = eval(*e.c);
    if (!dstar.is_json() || !dstar.j.is_object())
      error(e.line, std::string("argument after ** must be a mapping, not ") + type_name(dstar));
    for (auto it = dstar.j.begin(); it != dstar.j.end(); ++it) {
      if (!key_value(it.key()).is_string()) error(e.line, "keywords must be strings");
      args.kwargs.emplace_back(it.key(), Value(it.value()));
    }
  }
  return args;
}

Value Evaluator::eval(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::literal:
      return e.value;
    case Expr::Kind::name:
      return lookup(e.name);
    case Expr::Kind::list: {
      Json arr = Json::array();
      for (const auto& x : e.items) arr.push_back(require_json(eval(*x), e.line, *this, "a list"));
      return arr;
    }
    case Expr::Kind::dict: {
      Json obj = Json::object();
      for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
        std::string key = dict_key(*this, eval(*e.items[k]), e.line);
        obj[key] = require_json(eval(*e.items[k + 1]), e.line, *this, "a dict");
      }
      return obj;
    }
    case Expr::Kind::attr: {
      Value obj = eval(*e.a);
      if (obj.is_undefined())
        error(e.line, "'" + obj.undefined_name + "' is undefined (reading its attribute '" + e.name + "')");
      if (obj.kind == Value::Kind::ns) {
        auto v = obj.ns->find(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      if (obj.is_json() && obj.j.is_object()) {
        auto it = obj.j.find(e.name);
        if (it != obj.j.end()) return *it;
      }
      return Value::undefined(e.name);
    }
    case Expr::Kind::item: {
      Value obj = eval(*e.a);
      Value key = eval(*e.b);
      if (obj.is_undefined()) error(e.line, "'" + obj.undefined_name + "' is undefined (indexing it with [])");
      if (obj.kind == Value::Kind::ns && key.is_string()) {
        auto v = obj.ns->find(key.j.get<std::string>());
        return v ? *v : Value::undefined(key.j.get<std::string>());
      }
      if (!obj.is_json()) error(e.line, std::string("'") + type_name(obj) + "' object is not subscriptable");
      if (obj.is_iterator()) return Value::undefined("item");  // a generator has no [] (the sandbox gives undefined)
      const Json& j = obj.j;
      if (j.is_object()) {
        if (auto k = lookup_key(key)) {
          auto it = j.find(*k);
          if (it != j.end()) return *it;
        }
        return Value::undefined(key.is_json() ? to_str(key) : std::string("item"));
      }
      if (j.is_array() || j.is_string()) {
        if (!is_int(key)) error(e.line, std::string("indices must be integers, not ") + type_name(key));
        if (j.is_array()) {
          int64_t idx = wrap_index(as_int(key), j.size());
          return idx < 0 ? Value::undefined("item") : Value(j[static_cast<size_t>(idx)]);
        }
        auto chars = utf8_chars(j.get<std::string>());
        int64_t idx = wrap_index(as_int(key), chars.size());
        return idx < 0 ? Value::undefined("item") : Value(Json(chars[static_cast<size_t>(idx)]));
      }
      return Value::undefined("item");
    }
    case Expr::Kind::slice: {
      Value obj = eval(*e.a);
      Value parts[3];
      for (int k = 0; k < 3; ++k)
        if (e.items[k]) parts[k] = eval(*e.items[k]);
      Json j = require_json(obj, e.line, *this, "a slice");
      if (j.is_array()) {
        Json out = Json::array();
        for (size_t k : slice_indices(j.size(), parts[0], parts[1], parts[2], e.line, *this)) out.push_back(j[k]);
        return out;
      }
      if (j.is_string()) {
        auto chars = utf8_chars(j.get<std::string>());
        std::string out;
        for (size_t k : slice_indices(chars.size(), parts[0], parts[1], parts[2], e.line, *this)) out += chars[k];
        return Json(out);
      }
      error(e.line, std::string("'") + type_name(obj) + "' object cannot be sliced");
    }
    case Expr::Kind::call: {
      CallArgs args = eval_args(e);
      if (e.a->kind == Expr::Kind::attr) {  // obj.method(...)
        Value obj = eval(*e.a->a);
        if (obj.is_undefined())
          error(e.line, "'" + obj.undefined_name + "' is undefined (calling its method '" + e.a->name + "')");
        if (obj.is_json()) return call_method(*this, obj, e.a->name, args, e.line);
      }
      Value fn = eval(*e.a);
      if (fn.kind != Value::Kind::func) {
        if (fn.is_undefined()) error(e.line, "'" + fn.undefined_name + "' is undefined (called as a function)");
        error(e.line, std::string("'") + type_name(fn) + "' object is not callable");
      }
      return (*fn.fn)(*this, args, e.line);
    }
    case Expr::Kind::filter: {
      Value input = eval(*e.a);
      CallArgs args = eval_args(e);
      return apply_filter(*this, e.name, input, args, e.line);
    }
    case Expr::Kind::test: {
      Value input = eval(*e.a);
      CallArgs args = eval_args(e);
      bool r = apply_test(*this, e.name, input, args, e.line);
      return Json(e.negate ? !r : r);
    }
    case Expr::Kind::unary: {
      Value v = eval(*e.a);
      if (e.name == "not") return Json(!truthy(v));
      if (!is_num(v) && !(v.is_json() && v.j.is_boolean()))
        error(e.line, std::string("bad operand type for unary ") + e.name + ": '" + type_name(v) + "'");
      if (e.name == "+") return v;
      if (is_int(v)) {
        if (as_int(v) == std::numeric_limits<int64_t>::min()) error(e.line, "integer overflow in unary -");
        return Json(-as_int(v));
      }
      return Json(-as_double(v));
    }
    case Expr::Kind::binary: {
      if (e.name == "and") {
        Value l = eval(*e.a);
        return truthy(l) ? eval(*e.b) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.a);
        return truthy(l) ? l : eval(*e.b);
      }
      Value l = eval(*e.a);
      Value r = eval(*e.b);
      if (e.name == "~") return Json(to_str(l) + to_str(r));
      return arith(e.name, l, r, e.line, *this);
    }
    case Expr::Kind::compare: {
      Value l = eval(*e.a);
      for (size_t k = 0; k < e.ops.size(); ++k) {
        Value r = eval(*e.items[k]);
        if (!compare(e.ops[k], l, r, e.line, *this)) return Json(false);
        l = r;
      }
      return Json(true);
    }
    case Expr::Kind::cond: {
      if (truthy(eval(*e.b))) return eval(*e.a);
      if (e.c) return eval(*e.c);
      return Value::undefined("else branch");
    }
  }
  error(e.line, "internal: unknown expression kind");
}

Value Evaluator::call_macro(const MacroDef& m, CallArgs& args, int line,
                            const std::vector<std::shared_ptr<Frame>>& scope) {
  if (args.args.size() > m.params.size())
    error(line, "macro '" + m.name + "' takes " + std::to_string(m.params.size()) + " arguments, got " +
                    std::to_string(args.args.size()));
  auto frame = new_frame();
  for (size_t k = 0; k < m.params.size(); ++k) {
    const auto& [pname, pdefault] = m.params[k];
    Value v = Value::undefined(pname);
    if (k < args.args.size()) v = args.args[k];
    bool found = false;
    for (const auto& kv : args.kwargs)
      if (kv.first == pname) {
        v = kv.second;
        found = true;
      }
    if (k >= args.args.size() && !found && pdefault) v = eval(*pdefault);
    frame->vars[pname] = v;
  }
  for (const auto& kv : args.kwargs) {
    bool known = false;
    for (const auto& p : m.params) known |= p.first == kv.first;
    if (kv.first == "caller") {
      frame->vars["caller"] = kv.second;
      continue;
    }
    if (!known) error(line, "macro '" + m.name + "' has no parameter '" + kv.first + "'");
  }
  if (macro_depth >= kMaxMacroDepth)
    error(line, "macro '" + m.name + "' recursed more than " + std::to_string(kMaxMacroDepth) + " calls deep");
  std::vector<std::shared_ptr<Frame>> saved = frames;
  frames = scope;
  frames.push_back(frame);
  std::string out;
  ++macro_depth;
  try {
    exec(m.body, out);
  } catch (...) {
    --macro_depth;
    frames = saved;
    throw;
  }
  --macro_depth;
  frames = saved;
  return Json(out);
}

Evaluator::Flow Evaluator::exec(const Body& body, std::string& out) {
  for (const auto& sp : body) {
    const Stmt& s = *sp;
    switch (s.kind) {
      case Stmt::Kind::text:
        out += s.text;
        break;
      case Stmt::Kind::output:
        out += to_str(eval(*s.expr));
        break;
      case Stmt::Kind::if_: {
        bool taken = false;
        for (const auto& [cond, b] : s.branches) {
          if (truthy(eval(*cond))) {
            taken = true;
            Flow f = exec(b, out);
            if (f != Flow::normal) return f;
            break;
          }
        }
        if (!taken) {
          Flow f = exec(s.else_body, out);
          if (f != Flow::normal) return f;
        }
        break;
      }
      case Stmt::Kind::for_: {
        std::vector<Value> items = iterate(eval(*s.expr), s.line, *this);
        auto bind = [&](Frame& f, const Value& item) {
          if (s.targets.size() == 1) {
            f.vars[s.targets[0]] = item;
            return;
          }
          if (!item.is_json() || !item.j.is_array() || item.j.size() != s.targets.size())
            error(s.line, "cannot unpack " + std::string(type_name(item)) + " into " +
                              std::to_string(s.targets.size()) + " loop variables");
          for (size_t k = 0; k < s.targets.size(); ++k) f.vars[s.targets[k]] = Value(item.j[k]);
        };
        if (s.loop_filter) {  // `for x in xs if cond`: filter first, so loop.* counts the kept items
          std::vector<Value> kept;
          for (const auto& item : items) {
            step(s.line, out);
            frames.push_back(new_frame());
            bind(*frames.back(), item);
            bool keep = truthy(eval(*s.loop_filter));
            frames.pop_back();
            if (keep) kept.push_back(item);
          }
          items = std::move(kept);
        }
        if (items.empty()) {
          Flow f = exec(s.else_body, out);
          if (f != Flow::normal) return f;
          break;
        }
        size_t n = items.size();
        for (size_t k = 0; k < n; ++k) {
          step(s.line, out);
          auto frame = new_frame();
          bind(*frame, items[k]);
          frame->vars["loop"] = loop_object(items, k);
          frames.push_back(frame);
          Flow f;
          try {
            f = exec(s.body, out);
          } catch (...) {
            frames.pop_back();
            throw;
          }
          frames.pop_back();
          if (f == Flow::break_) break;
        }
        break;
      }
      case Stmt::Kind::set: {
        Value v = eval(*s.expr);
        if (s.attr_set) {
          Value target = lookup(s.targets[0]);
          if (target.kind != Value::Kind::ns)
            error(s.line, "'{% set " + s.targets[0] + "." + s.targets[1] + " %}' needs '" + s.targets[0] +
                              "' to be a namespace(), it is " + type_name(target));
          if (s.targets[1][0] == '_')  // transformers' TemplateNamespace.__setitem__
            error(s.line, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                              s.targets[1] + "'. Please rename the attribute.");
          target.ns->set(s.targets[1], v);
        } else if (s.targets.size() == 1) {
          assign(s.targets[0], v);
        } else {
          if (!v.is_json() || !v.j.is_array() || v.j.size() != s.targets.size())
            error(s.line, "cannot unpack " + std::string(type_name(v)) + " into " +
                              std::to_string(s.targets.size()) + " names");
          for (size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], Value(v.j[k]));
        }
        break;
      }
      case Stmt::Kind::set_block: {
        std::string captured;
        exec(s.body, captured);
        Value v = Json(captured);
        if (s.expr) {
          // the filter chain's innermost input is null: feed it the captured text
          std::vector<const Expr*> chain;
          for (const Expr* f = s.expr.get(); f; f = f->a.get()) chain.push_back(f);
          for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            CallArgs args = eval_args(**it);
            v = apply_filter(*this, (*it)->name, v, args, (*it)->line);
          }
        }
        assign(s.targets[0], v);
        break;
      }
      case Stmt::Kind::filter_block: {
        std::string captured;
        exec(s.body, captured);
        Value v = Json(captured);
        std::vector<const Expr*> chain;
        for (const Expr* f = s.expr.get(); f; f = f->a.get()) chain.push_back(f);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          CallArgs args = eval_args(**it);
          v = apply_filter(*this, (*it)->name, v, args, (*it)->line);
        }
        out += to_str(v);
        break;
      }
      case Stmt::Kind::macro: {
        std::shared_ptr<MacroDef> m = s.macro;
        Value fn;
        fn.kind = Value::Kind::func;
        auto scope = frames;  // the closure: shared frames, so later `set`s in them are seen at call time
        fn.fn = std::make_shared<Function>(
            [m, scope](Evaluator& ev, CallArgs& args, int line) { return ev.call_macro(*m, args, line, scope); });
        assign(m->name, fn);
        break;
      }
      case Stmt::Kind::call_block: {
        // {% call m(args) %}body{% endcall %}: m runs with `caller` = a macro rendering body
        std::shared_ptr<MacroDef> body_macro = s.macro;
        Value caller;
        caller.kind = Value::Kind::func;
        auto scope = frames;
        caller.fn = std::make_shared<Function>([body_macro, scope](Evaluator& ev, CallArgs& args, int line) {
          return ev.call_macro(*body_macro, args, line, scope);
        });
        const Expr& call = *s.expr;
        Value fn = eval(*call.a);
        if (fn.kind != Value::Kind::func) error(s.line, "'{% call %}' target is not a macro");
        CallArgs args = eval_args(call);
        args.kwargs.emplace_back("caller", caller);
        out += to_str((*fn.fn)(*this, args, s.line));
        break;
      }
      case Stmt::Kind::break_:
        return Flow::break_;
      case Stmt::Kind::continue_:
        return Flow::continue_;
      case Stmt::Kind::generation: {
        Flow f = exec(s.body, out);
        if (f != Flow::normal) return f;
        break;
      }
    }
  }
  return Flow::normal;
}

Template::Template(const std::string& source, std::string name)
    : program_(parse(lex(source, name), name)), name_(std::move(name)) {}

std::string Template::render(const Json& context) const {
  RLHF_CHECK(context.is_object(), name_, ": the render context must be a JSON object, got ", context.type_name());
  Evaluator ev;
  ev.name = name_;
  // Macros are closures over the frames where they are defined, and those frames hold the macros: a cycle of
  // shared_ptrs. Emptying every frame this render made, when it ends (or throws), frees them (LeakSanitizer found
  // the leak: a macro inside a loop leaked its loop's frames on every render).
  struct BreakCycles {
    Evaluator& ev;
    ~BreakCycles() {
      for (const auto& w : ev.made)
        if (auto f = w.lock()) f->vars.clear();
    }
  } break_cycles{ev};
  auto globals = ev.new_frame();
  install_globals(*globals);
  for (auto it = context.begin(); it != context.end(); ++it) globals->vars[it.key()] = Value(it.value());
  ev.frames.push_back(globals);
  std::string out;
  ev.exec(program_->body, out);
  return out;
}

std::string render(const std::string& source, const Json& context, const std::string& name) {
  return Template(source, name).render(context);
}

}  // namespace rlhf::jinja

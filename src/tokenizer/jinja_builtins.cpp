// Jinja builtins with Python semantics: str()/repr()/json.dumps, truthiness, equality, and one table each of
// filters, tests, string/dict methods and global functions. A name missing from a table is an error naming it and
// the template line (never a silent empty string).
#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <set>
#include <unordered_map>

#include "tokenizer/jinja_ast.h"

namespace rlhf::jinja {

// ---------------------------------------------------------------- UTF-8 and Python string helpers
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + n > s.size()) n = 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

namespace {

// Python's str.isspace() code points: \t-\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000 (strip(), split() and trim use it).
bool py_space_cp(uint32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

uint32_t decode_cp(const std::string& ch) {
  utf8proc_int32_t cp = -1;
  utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()), &cp);
  return cp < 0 ? 0xFFFD : static_cast<uint32_t>(cp);
}

// Byte length of the whitespace code point starting at s[i], 0 if none there.
size_t space_at(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + n > s.size()) return 0;
  return py_space_cp(decode_cp(s.substr(i, n))) ? n : 0;
}

// Byte length of the whitespace code point ending at s[e-1], 0 if none there.
size_t space_before(const std::string& s, size_t e) {
  size_t b = e;
  while (b > 0 && e - b < 4 && (static_cast<unsigned char>(s[b - 1]) & 0xC0) == 0x80) --b;
  if (b == 0) return 0;
  --b;
  return space_at(s, b) == e - b ? e - b : 0;
}

std::string map_case(const std::string& s, int mode /*1 upper, -1 lower*/) {
  std::string out;
  for (const auto& ch : utf8_chars(s)) {
    utf8proc_int32_t cp;
    if (utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()),
                         &cp) <= 0) {
      out += ch;
      continue;
    }
    cp = mode > 0 ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
    utf8proc_uint8_t buf[4];
    out.append(reinterpret_cast<char*>(buf), static_cast<size_t>(utf8proc_encode_char(cp, buf)));
  }
  return out;
}

bool is_cased_letter(const std::string& ch) {
  utf8proc_int32_t cp;
  if (utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()),
                       &cp) <= 0)
    return false;
  return utf8proc_toupper(cp) != cp || utf8proc_tolower(cp) != cp;
}

std::string capitalize(const std::string& s) {
  auto chars = utf8_chars(s);
  std::string out;
  for (size_t k = 0; k < chars.size(); ++k) out += map_case(chars[k], k == 0 ? 1 : -1);
  return out;
}

// Python str.title(): a cased letter after a non-cased character starts a word.
std::string title(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (const auto& ch : utf8_chars(s)) {
    bool cased = is_cased_letter(ch);
    out += map_case(ch, cased && !prev_cased ? 1 : -1);
    prev_cased = cased;
  }
  return out;
}

// str.strip/lstrip/rstrip(chars): code points, Unicode whitespace when chars is None
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  if (chars.is_undefined() || chars.j.is_null()) {
    size_t b = 0, e = s.size();
    if (left)
      for (size_t n; b < e && (n = space_at(s, b)) > 0;) b += n;
    if (right)
      for (size_t n; e > b && (n = space_before(s, e)) > 0;) e -= n;
    return s.substr(b, e - b);
  }
  std::vector<std::string> set = utf8_chars(chars.is_string() ? chars.j.get<std::string>() : to_str(chars));
  auto in_set = [&](const std::string& ch) { return std::find(set.begin(), set.end(), ch) != set.end(); };
  std::vector<std::string> cs = utf8_chars(s);
  size_t b = 0, e = cs.size();
  if (left)
    while (b < e && in_set(cs[b])) ++b;
  if (right)
    while (e > b && in_set(cs[e - 1])) --e;
  std::string out;
  for (size_t k = b; k < e; ++k) out += cs[k];
  return out;
}

Json split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep.is_undefined() || sep.j.is_null()) {  // runs of whitespace, no empty parts
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < s.size();) {
      for (size_t n; i < s.size() && (n = space_at(s, i)) > 0;) i += n;
      size_t b = i;
      while (i < s.size() && space_at(s, i) == 0) ++i;
      if (i > b) words.emplace_back(b, i);
    }
    if (maxsplit < 0 || static_cast<size_t>(maxsplit) + 1 >= words.size()) {
      for (auto [b, e] : words) parts.push_back(s.substr(b, e - b));
    } else if (!from_right) {
      for (int64_t k = 0; k < maxsplit; ++k) parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
      size_t rest = words[maxsplit].first;
      size_t e = s.size();
      for (size_t n; e > rest && (n = space_before(s, e)) > 0;) e -= n;
      parts.push_back(s.substr(rest, e - rest));
    } else {
      size_t first = words.size() - static_cast<size_t>(maxsplit);
      size_t b = 0;
      for (size_t n; b < s.size() && (n = space_at(s, b)) > 0;) b += n;
      parts.push_back(s.substr(b, words[first - 1].second - b));
      for (size_t k = first; k < words.size(); ++k) parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
    }
    return Json(parts);
  }
  std::string d = sep.j.get<std::string>();
  if (d.empty()) fail("empty separator in split()");
  if (!from_right) {
    size_t b = 0;
    int64_t n = 0;
    while (true) {
      size_t p = (maxsplit >= 0 && n >= maxsplit) ? std::string::npos : s.find(d, b);
      if (p == std::string::npos) break;
      parts.push_back(s.substr(b, p - b));
      b = p + d.size();
      ++n;
    }
    parts.push_back(s.substr(b));
  } else {
    size_t e = s.size();
    int64_t n = 0;
    std::vector<std::string> rev;
    while (true) {
      if (maxsplit >= 0 && n >= maxsplit) break;
      if (e < d.size()) break;
      size_t p = s.rfind(d, e - d.size());
      if (p == std::string::npos) break;
      rev.push_back(s.substr(p + d.size(), e - p - d.size()));
      e = p;
      ++n;
    }
    rev.push_back(s.substr(0, e));
    parts.assign(rev.rbegin(), rev.rend());
  }
  return Json(parts);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between characters
    auto chars = utf8_chars(s);
    int64_t n = 0;
    for (const auto& ch : chars) {
      if (count < 0 || n < count) out += to, ++n;
      out += ch;
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t b = 0;
  int64_t n = 0;
  while (true) {
    size_t p = (count >= 0 && n >= count) ? std::string::npos : s.find(from, b);
    if (p == std::string::npos) break;
    out += s.substr(b, p - b) + to;
    b = p + from.size();
    ++n;
  }
  return out + s.substr(b);
}

// Python float repr: shortest round-trip digits, scientific below 1e-4 and from 1e16.
std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. -1.2345e+02
  size_t epos = sci.find('e');
  int exp = std::stoi(sci.substr(epos + 1));
  std::string mant = sci.substr(0, epos);
  bool neg = mant[0] == '-';
  if (neg) mant = mant.substr(1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -5 + 1 && exp < 16) {  // -4 <= exp < 16
    if (exp >= 0) {
      std::string ip = digits.size() > static_cast<size_t>(exp) ? digits.substr(0, exp + 1)
                                                                 : digits + std::string(exp + 1 - digits.size(), '0');
      std::string fp = digits.size() > static_cast<size_t>(exp + 1) ? digits.substr(exp + 1) : "0";
      out += ip + "." + fp;
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return out;
}

// Python repr(str): quotes, \\ \n \r \t, and every other non-printable code point (categories Cc Cf Cs Co Cn Zl Zp,
// Zs but the space) as \xNN, \uNNNN or \UNNNNNNNN.
std::string py_str_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (const auto& ch : utf8_chars(s)) {
    const uint32_t c = decode_cp(ch);
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      bool printable = c == ' ' || !(cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                                     cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
                                     cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_ZL ||
                                     cat == UTF8PROC_CATEGORY_ZP || cat == UTF8PROC_CATEGORY_ZS);
      if (printable) {
        out += ch;
      } else {
        char b[16];
        if (c < 0x100)
          std::snprintf(b, sizeof(b), "\\x%02x", c);
        else if (c < 0x10000)
          std::snprintf(b, sizeof(b), "\\u%04x", c);
        else
          std::snprintf(b, sizeof(b), "\\U%08x", c);
        out += b;
      }
    }
  }
  return out + q;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof(b), "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void dumps(const Json& j, int indent, bool sort_keys, int level, std::string& out) {
  if (j.is_object() || j.is_array()) {
    if (j.empty()) {
      out += j.is_object() ? "{}" : "[]";
      return;
    }
    std::string nl = indent >= 0 ? "\n" + std::string(static_cast<size_t>(indent * (level + 1)), ' ') : "";
    std::string item_sep = indent >= 0 ? "," : ", ";
    out += j.is_object() ? "{" : "[";
    out += nl;
    bool first = true;
    if (j.is_object()) {
      std::vector<std::string> keys;
      for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
      if (sort_keys) {  // Python sorts the keys themselves: strings as strings, numbers as numbers, never mixed
        bool all_str = true, all_num = true;
        for (const auto& k : keys) {
          Json kv = key_value(k);
          all_str &= kv.is_string();
          all_num &= kv.is_number() || kv.is_boolean();
        }
        if (!all_str && !all_num) fail("tojson(sort_keys=true): '<' not supported between the dict's key types");
        if (all_str) {
          std::sort(keys.begin(), keys.end());
        } else {
          auto num = [](const std::string& k) {
            Json kv = key_value(k);
            return kv.is_boolean() ? (kv.get<bool>() ? 1.0 : 0.0) : kv.get<double>();
          };
          std::stable_sort(keys.begin(), keys.end(),
                           [&](const std::string& a, const std::string& b) { return num(a) < num(b); });
        }
      }
      for (const auto& k : keys) {
        if (!first) out += item_sep + nl;
        first = false;
        // json.dumps turns a key that is not a string into one: 1 -> "1", 1.5 -> "1.5", True -> "true", None -> "null"
        Json kv = key_value(k);
        if (kv.is_string()) {
          out += json_str(k);
        } else {
          std::string spelled;
          dumps(kv, -1, false, 0, spelled);
          out += json_str(spelled);
        }
        out += ": ";
        dumps(j.at(k), indent, sort_keys, level + 1, out);
      }
    } else {
      for (const auto& x : j) {
        if (!first) out += item_sep + nl;
        first = false;
        dumps(x, indent, sort_keys, level + 1, out);
      }
    }
    if (indent >= 0) out += "\n" + std::string(static_cast<size_t>(indent * level), ' ');
    out += j.is_object() ? "}" : "]";
    return;
  }
  if (j.is_string()) {
    out += json_str(j.get<std::string>());
  } else if (j.is_number_float()) {
    double d = j.get<double>();
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : py_float(d);
  } else {
    out += j.dump();  // null, true, false, integers
  }
}

}  // namespace

std::string py_repr(const Json& j) {
  if (j.is_null()) return "None";
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_number_float()) return py_float(j.get<double>());
  if (j.is_number()) return j.dump();
  if (j.is_string()) return py_str_repr(j.get<std::string>());
  std::string out = j.is_array() ? "[" : "{";
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!first) out += ", ";
    first = false;
    if (j.is_object()) out += py_repr(key_value(it.key())) + ": ";
    out += py_repr(it.value());
  }
  return out + (j.is_array() ? "]" : "}");
}

std::string py_json_dumps(const Json& j, int indent, bool sort_keys) {
  std::string out;
  dumps(j, indent, sort_keys, 0, out);
  return out;
}

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return "";
    case Value::Kind::ns: return "<Namespace>";
    case Value::Kind::func: return "<function>";
    default: break;
  }
  if (v.j.is_string()) return v.j.get<std::string>();
  return py_repr(v.j);
}

bool truthy(const Value& v) {
  if (v.kind == Value::Kind::undefined) return false;
  if (v.kind != Value::Kind::json || v.is_iterator()) return true;
  const Json& j = v.j;
  if (j.is_null()) return false;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<int64_t>() != 0;
  if (j.is_number()) return j.get<double>() != 0.0;
  if (j.is_string()) return !j.get_ref<const std::string&>().empty();  // (json::empty() is false for any string)
  if (j.is_array() || j.is_object()) return !j.empty();
  return true;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (!a.is_json() || !b.is_json()) return a.ns == b.ns && a.fn == b.fn && a.kind == b.kind;
  auto numeric = [](const Json& j) { return j.is_number() || j.is_boolean(); };
  if (numeric(a.j) && numeric(b.j) && (a.j.is_boolean() != b.j.is_boolean())) {  // Python: True == 1
    auto d = [](const Json& j) { return j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>(); };
    return d(a.j) == d(b.j);
  }
  return a.j == b.j;
}

std::string dict_key(Evaluator& ev, const Value& key, int line) {
  if (key.is_undefined()) ev.error(line, "'" + key.undefined_name + "' is undefined (used as a dict key)");
  if (!key.is_json() || key.j.is_array() || key.j.is_object())
    ev.error(line, std::string("unhashable type: '") + (key.is_json() ? (key.j.is_array() ? "list" : "dict") : "object") +
                       "' (used as a dict key)");
  if (key.j.is_string()) return key.j.get<std::string>();
  return "\xff" + key.j.dump();
}

Json key_value(const std::string& stored) {
  if (stored.empty() || stored[0] != '\xff') return Json(stored);
  return Json::parse(stored.substr(1));
}

std::optional<std::string> lookup_key(const Value& key) {
  if (!key.is_json() || key.j.is_array() || key.j.is_object()) return std::nullopt;
  if (key.j.is_string()) return key.j.get<std::string>();
  return "\xff" + key.j.dump();
}

Value html_escape(const Value& v) {
  if (v.markup) return v;
  std::string out;
  for (char c : to_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  Value m(Json(std::move(out)));
  m.markup = true;
  return m;
}

namespace {

using FilterFn = Value (*)(Evaluator&, const Value&, CallArgs&, int);
using TestFn = bool (*)(Evaluator&, const Value&, CallArgs&, int);

const char* kind_of(const Value& v) {
  if (v.is_undefined()) return "undefined";
  if (!v.is_json()) return "object";
  return v.j.type_name();
}

std::string need_str(Evaluator& ev, const Value& v, int line, const char* what) {
  if (!v.is_string()) ev.error(line, std::string(what) + " expects a string, got " + kind_of(v));
  return v.j.get<std::string>();
}

int64_t need_int(Evaluator& ev, const Value& v, int line, const char* what, int64_t dflt) {
  if (v.is_undefined() || (v.is_json() && v.j.is_null())) return dflt;
  if (!v.is_json() || !(v.j.is_number_integer() || v.j.is_boolean()))
    ev.error(line, std::string(what) + " expects an integer, got " + kind_of(v));
  return v.j.is_boolean() ? (v.j.get<bool>() ? 1 : 0) : v.j.get<int64_t>();
}

// Attribute path as map/selectattr/sort/join use it: "a.b.0".
Value get_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t b = 0;
  while (true) {
    size_t e = path.find('.', b);
    std::string part = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (!cur.is_json()) return Value::undefined(part);
    if (cur.j.is_object()) {
      auto it = cur.j.find(part);
      if (it == cur.j.end()) return Value::undefined(part);
      cur = Value(*it);
    } else if (cur.j.is_array() && !part.empty() && part.size() <= 18 &&
               std::all_of(part.begin(), part.end(), ::isdigit)) {
      size_t idx = std::stoul(part);
      if (idx >= cur.j.size()) return Value::undefined(part);
      cur = Value(cur.j[idx]);
    } else {
      return Value::undefined(part);
    }
    if (e == std::string::npos) return cur;
    b = e + 1;
  }
}

std::vector<Value> as_list(Evaluator& ev, const Value& v, int line, const char* what) {
  std::vector<Value> out;
  if (v.is_undefined()) return out;
  if (!v.is_json()) ev.error(line, std::string(what) + " expects a sequence, got " + kind_of(v));
  if (v.j.is_array()) {
    for (const auto& x : v.j) out.emplace_back(x);
  } else if (v.j.is_object()) {
    for (auto it = v.j.begin(); it != v.j.end(); ++it) out.emplace_back(key_value(it.key()));
  } else if (v.j.is_string()) {
    for (auto& c : utf8_chars(v.j.get<std::string>())) out.emplace_back(Json(c));
  } else {
    ev.error(line, std::string(what) + " expects a sequence, got " + kind_of(v));
  }
  return out;
}

Json to_json_list(Evaluator& ev, const std::vector<Value>& xs, int line) {
  Json arr = Json::array();
  for (const auto& x : xs) {
    if (!x.is_json()) ev.error(line, "a list can only hold data values here");
    arr.push_back(x.j);
  }
  return arr;
}

// ---------------------------------------------------------------- filters
Value f_trim(Evaluator&, const Value& in, CallArgs& a, int) { return Json(strip(to_str(in), a.get(0, "chars"), true, true)); }
Value f_length(Evaluator& ev, const Value& in, CallArgs&, int line) {
  if (in.is_undefined()) return Json(0);
  if (in.is_string()) return Json(utf8_chars(in.j.get<std::string>()).size());
  if (in.is_iterator()) ev.error(line, "object of type '" + in.lazy + "' has no len()");
  if (in.is_json() && (in.j.is_array() || in.j.is_object())) return Json(in.j.size());
  ev.error(line, std::string("object of type '") + kind_of(in) + "' has no len()");
}
Value f_tojson(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  if (!in.is_json()) ev.error(line, std::string("tojson: cannot serialize ") + kind_of(in));
  if (!in.lazy.empty())  // json.dumps refuses iterators and views (hint: |list first)
    ev.error(line, "tojson: Object of type " + in.lazy + " is not JSON serializable (hint: add |list before |tojson)");
  int indent = static_cast<int>(need_int(ev, a.get(0, "indent"), line, "tojson(indent)", -1));
  bool sort_keys = truthy(a.get(99, "sort_keys"));
  return Json(py_json_dumps(in.j, indent, sort_keys));
}
Value f_string(Evaluator&, const Value& in, CallArgs&, int) {  // soft_str: a Markup stays a Markup
  if (in.markup) return in;
  return Json(to_str(in));
}
Value f_upper(Evaluator&, const Value& in, CallArgs&, int) { return Json(map_case(to_str(in), 1)); }
Value f_lower(Evaluator&, const Value& in, CallArgs&, int) { return Json(map_case(to_str(in), -1)); }
Value f_capitalize(Evaluator&, const Value& in, CallArgs&, int) { return Json(capitalize(to_str(in))); }
Value f_title(Evaluator&, const Value& in, CallArgs&, int) { return Json(title(to_str(in))); }
Value f_first(Evaluator& ev, const Value& in, CallArgs&, int line) {
  auto xs = as_list(ev, in, line, "first");
  return xs.empty() ? Value::undefined("first") : xs.front();
}
Value f_last(Evaluator& ev, const Value& in, CallArgs&, int line) {
  if (in.is_iterator()) ev.error(line, "last: '" + in.lazy + "' object is not reversible");
  auto xs = as_list(ev, in, line, "last");
  return xs.empty() ? Value::undefined("last") : xs.back();
}
Value f_join(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  Value sep = a.get(0, "d");
  Value attr = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const auto& x : as_list(ev, in, line, "join")) {
    if (!first) out += sep.is_undefined() ? "" : to_str(sep);
    first = false;
    out += to_str(attr.is_undefined() ? x : get_path(x, to_str(attr)));
  }
  return Json(out);
}
Value f_default(Evaluator&, const Value& in, CallArgs& a, int) {
  Value dflt = a.get(0, "default_value");
  bool boolean = truthy(a.get(1, "boolean"));
  if (in.is_undefined() || (boolean && !truthy(in))) return dflt.is_undefined() ? Value(Json("")) : dflt;
  return in;
}
Value f_items(Evaluator& ev, const Value& in, CallArgs&, int line) {
  Json out = Json::array();
  if (in.is_undefined()) return out;
  if (!in.is_json() || !in.j.is_object()) ev.error(line, std::string("items expects a mapping, got ") + kind_of(in));
  for (auto it = in.j.begin(); it != in.j.end(); ++it) out.push_back(Json::array({key_value(it.key()), it.value()}));
  return Value::lazy_list(std::move(out), "generator");
}
Value f_list(Evaluator& ev, const Value& in, CallArgs&, int line) { return to_json_list(ev, as_list(ev, in, line, "list"), line); }
Value f_replace(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  return Json(replace_all(to_str(in), need_str(ev, a.get(0, "old"), line, "replace(old)"),
                          need_str(ev, a.get(1, "new"), line, "replace(new)"),
                          need_int(ev, a.get(2, "count"), line, "replace(count)", -1)));
}
Value f_safe(Evaluator&, const Value& in, CallArgs&, int) {  // Markup(str(x))
  if (in.markup) return in;
  Value m(Json(to_str(in)));
  m.markup = true;
  return m;
}
Value f_escape(Evaluator&, const Value& in, CallArgs&, int) { return html_escape(in); }
Value f_int(Evaluator&, const Value& in, CallArgs& a, int) {
  Value dflt = a.get(0, "default");
  Json d = dflt.is_json() ? dflt.j : Json(0);
  if (!in.is_json()) return d;
  if (in.j.is_number_integer()) return in;
  if (in.j.is_boolean()) return Json(in.j.get<bool>() ? 1 : 0);
  // A float outside int64's range (or inf, nan) cannot be cast (undefined behaviour): the default, as for text.
  auto from_double = [&](double v) -> Json {
    return std::isfinite(v) && std::fabs(v) < 9.2e18 ? Json(static_cast<int64_t>(std::trunc(v))) : d;
  };
  if (in.j.is_number()) return from_double(in.j.get<double>());
  if (in.j.is_string()) {
    std::string s = strip(in.j.get<std::string>(), Value(), true, true);
    try {
      size_t used = 0;
      long long v = std::stoll(s, &used, 10);
      if (used == s.size()) return Json(v);
      double dv = std::stod(s, &used);
      if (used == s.size()) return from_double(dv);
    } catch (const std::exception&) {  // not a number: jinja returns the default, as we do
    }
  }
  return d;
}
Value f_float(Evaluator&, const Value& in, CallArgs& a, int) {
  Value dflt = a.get(0, "default");
  Json d = dflt.is_json() ? dflt.j : Json(0.0);
  if (!in.is_json()) return d;
  if (in.j.is_number()) return Json(in.j.get<double>());
  if (in.j.is_string()) {
    try {
      size_t used = 0;
      std::string s = strip(in.j.get<std::string>(), Value(), true, true);
      double v = std::stod(s, &used);
      if (used == s.size()) return Json(v);
    } catch (const std::exception&) {  // not a number: jinja returns the default
    }
  }
  return d;
}
Value f_abs(Evaluator& ev, const Value& in, CallArgs&, int line) {
  if (!in.is_json() || !in.j.is_number()) ev.error(line, std::string("abs expects a number, got ") + kind_of(in));
  if (in.j.is_number_integer()) return Json(std::llabs(in.j.get<int64_t>()));
  return Json(std::fabs(in.j.get<double>()));
}
Value f_round(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  if (!in.is_json() || !in.j.is_number()) ev.error(line, std::string("round expects a number, got ") + kind_of(in));
  int64_t prec = need_int(ev, a.get(0, "precision"), line, "round(precision)", 0);
  std::string method = a.has(1, "method") ? to_str(a.get(1, "method")) : "common";
  double m = std::pow(10.0, static_cast<double>(prec));
  double x = in.j.get<double>() * m;
  if (method == "common" && in.j.is_number_integer() && prec >= 0) return in;  // round(3, 0) is the int 3
  if (method == "common" && prec >= 0 && prec < 300) {
    // Python's round(x, n): the exact binary value rounded to n decimals, halves to the even neighbour
    // (round(2.5) == 2.0, round(2.675, 2) == 2.67 as 2.675 is 2.67499...); printf's %.*f rounds the same way
    char buf[400];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(prec), in.j.get<double>());
    return Json(std::strtod(buf, nullptr));
  }
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Json(r / m);
}
Value f_unique(Evaluator& ev, const Value& in, CallArgs&, int line) {
  std::vector<Value> out;
  for (const auto& x : as_list(ev, in, line, "unique")) {
    bool seen = false;
    for (const auto& y : out) seen |= values_equal(x, y);
    if (!seen) out.push_back(x);
  }
  return Value::lazy_list(to_json_list(ev, out, line), "generator");
}
Value f_reverse(Evaluator& ev, const Value& in, CallArgs&, int line) {
  if (in.is_string()) {
    auto cs = utf8_chars(in.j.get<std::string>());
    std::string out;
    for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += *it;
    return Json(out);
  }
  auto xs = as_list(ev, in, line, "reverse");
  std::reverse(xs.begin(), xs.end());
  return Value::lazy_list(to_json_list(ev, xs, line), "list_reverseiterator");
}
Value f_sort(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  auto xs = as_list(ev, in, line, "sort");
  bool rev = truthy(a.get(0, "reverse"));
  bool case_sensitive = truthy(a.get(1, "case_sensitive"));
  Value attr = a.get(2, "attribute");
  auto key = [&](const Value& v) {
    Value k = attr.is_undefined() ? v : get_path(v, to_str(attr));
    if (!case_sensitive && k.is_string()) return Value(Json(map_case(k.j.get<std::string>(), -1)));
    return k;
  };
  std::stable_sort(xs.begin(), xs.end(), [&](const Value& x, const Value& y) {
    Value kx = key(x), ky = key(y);
    if (!kx.is_json() || !ky.is_json()) ev.error(line, "sort: cannot compare undefined values");
    return rev ? ky.j < kx.j : kx.j < ky.j;
  });
  return to_json_list(ev, xs, line);
}
Value f_indent(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  Value w = a.get(0, "width");
  std::string pad = w.is_string() ? w.j.get<std::string>()
                                  : std::string(static_cast<size_t>(need_int(ev, w, line, "indent(width)", 4)), ' ');
  bool first = truthy(a.get(1, "first"));
  bool blank = truthy(a.get(2, "blank"));
  std::string s = to_str(in);
  std::string out;
  size_t b = 0;
  bool is_first = true;
  while (true) {
    size_t e = s.find('\n', b);
    std::string ln = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    bool do_pad = is_first ? first : (blank || !strip(ln, Value(), true, true).empty());
    out += (do_pad ? pad : "") + ln;
    if (e == std::string::npos) break;
    out += "\n";
    b = e + 1;
    is_first = false;
  }
  return Json(out);
}
Value f_sum(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  Value attr = a.get(0, "attribute");
  Value start = a.get(1, "start");
  Json acc = start.is_json() ? start.j : Json(0);
  for (const auto& x : as_list(ev, in, line, "sum")) {
    Value v = attr.is_undefined() ? x : get_path(x, to_str(attr));
    if (!v.is_json() || !v.j.is_number()) ev.error(line, "sum: expects numbers");
    if (acc.is_number_integer() && v.j.is_number_integer())
      acc = acc.get<int64_t>() + v.j.get<int64_t>();
    else
      acc = acc.get<double>() + v.j.get<double>();
  }
  return acc;
}
Value f_minmax(Evaluator& ev, const Value& in, int line, bool want_max) {
  auto xs = as_list(ev, in, line, want_max ? "max" : "min");
  if (xs.empty()) return Value::undefined(want_max ? "max" : "min");
  Value best = xs[0];
  for (const auto& x : xs)
    if (want_max ? best.j < x.j : x.j < best.j) best = x;
  return best;
}
Value f_min(Evaluator& ev, const Value& in, CallArgs&, int line) { return f_minmax(ev, in, line, false); }
Value f_max(Evaluator& ev, const Value& in, CallArgs&, int line) { return f_minmax(ev, in, line, true); }
// dictsort(case_sensitive=false, by='key', reverse=false): the (key, value) pairs sorted by key or value,
// strings compared lower-cased unless case_sensitive
Value f_dictsort(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  CallArgs none;
  Value items = f_items(ev, in, none, line);
  const bool case_sensitive = truthy(a.get(0, "case_sensitive"));
  Value by = a.get(1, "by");
  const std::string by_s = by.is_undefined() ? "key" : to_str(by);
  if (by_s != "key" && by_s != "value") ev.error(line, "dictsort: You can only sort by either 'key' or 'value'");
  const size_t pos = by_s == "key" ? 0 : 1;
  const bool reverse = truthy(a.get(2, "reverse"));
  auto key = [&](const Json& pair) {
    const Json& k = pair[pos];
    return !case_sensitive && k.is_string() ? Json(map_case(k.get<std::string>(), -1)) : k;
  };
  std::vector<Json> xs(items.j.begin(), items.j.end());
  std::stable_sort(xs.begin(), xs.end(), [&](const Json& x, const Json& y) {
    return reverse ? key(y) < key(x) : key(x) < key(y);
  });
  return Json(xs);
}

// Python's `fmt % args` for the conversions templates use: %s %r %d %i %f %% with an optional precision (%.2f).
Value f_format(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  std::string fmt = need_str(ev, in, line, "format");
  if (!a.kwargs.empty() && !a.args.empty()) ev.error(line, "format: give positional or keyword arguments, not both");
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    size_t j = i + 1;
    int precision = -1;
    if (j < fmt.size() && fmt[j] == '.') {
      precision = 0;
      for (++j; j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j])); ++j)
        precision = precision * 10 + (fmt[j] - '0');
    }
    if (j >= fmt.size()) ev.error(line, "format: incomplete format");
    char conv = fmt[j];
    i = j;
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= a.args.size()) ev.error(line, "format: not enough arguments for format string");
    const Value& v = a.args[next++];
    if (conv == 's') {
      out += to_str(v);
    } else if (conv == 'r') {
      out += v.is_json() ? py_repr(v.j) : to_str(v);
    } else if (conv == 'd' || conv == 'i' || conv == 'f') {
      if (!v.is_json() || !(v.j.is_number() || v.j.is_boolean()))
        ev.error(line, std::string("format: %") + conv + " format: a real number is required, not " + kind_of(v));
      double d = v.j.is_boolean() ? (v.j.get<bool>() ? 1 : 0) : v.j.get<double>();
      char buf[64];
      if (conv == 'f')
        std::snprintf(buf, sizeof(buf), "%.*f", precision < 0 ? 6 : precision, d);
      else
        std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(std::trunc(d)));
      out += buf;
    } else {
      ev.error(line, std::string("format: unsupported format character '") + conv + "' (supported: %s %r %d %i %f %%)");
    }
  }
  if (next != a.args.size()) ev.error(line, "format: not all arguments converted during string formatting");
  return Json(out);
}

// len(re.findall(r"\w+", str(s))): runs of letters, digits (any script) and '_'
Value f_wordcount(Evaluator&, const Value& in, CallArgs&, int) {
  int64_t n = 0;
  bool in_word = false;
  for (const auto& ch : utf8_chars(to_str(in))) {
    utf8proc_int32_t cp = 0;
    utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()), &cp);
    auto cat = utf8proc_category(cp);
    bool word = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Json(n);
}

// batch(linecount, fill_with=None): the items in lists of linecount, the last one padded with fill_with if given
Value f_batch(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  int64_t n = need_int(ev, a.get(0, "linecount"), line, "batch(linecount)", 0);
  if (n <= 0) ev.error(line, "batch: linecount must be positive");
  Value fill = a.get(1, "fill_with");
  Json out = Json::array(), cur = Json::array();
  for (const auto& x : as_list(ev, in, line, "batch")) {
    if (!x.is_json()) ev.error(line, "batch: a list can only hold data values here");
    cur.push_back(x.j);
    if (static_cast<int64_t>(cur.size()) == n) out.push_back(std::exchange(cur, Json::array()));
  }
  if (!cur.empty()) {
    if (fill.is_json() && !fill.j.is_null())
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(fill.j);
    out.push_back(cur);
  }
  return Value::lazy_list(std::move(out), "generator");
}

// select / reject / selectattr / rejectattr: (attr,) test name, test args
Value select_impl(Evaluator& ev, const Value& in, CallArgs& a, int line, bool by_attr, bool keep_if) {
  size_t off = by_attr ? 1 : 0;
  std::string attr = by_attr ? to_str(a.get(0, "attribute")) : "";
  CallArgs test_args;
  for (size_t k = off + 1; k < a.args.size(); ++k) test_args.args.push_back(a.args[k]);
  std::string test = a.args.size() > off ? to_str(a.args[off]) : "";
  std::vector<Value> out;
  if (truthy(in))  // jinja2: `if value: for item in value`, so none and [] give an empty generator
    for (const auto& x : as_list(ev, in, line, by_attr ? "selectattr" : "select")) {
      Value v = by_attr ? get_path(x, attr) : x;
      bool r = test.empty() ? truthy(v) : apply_test(ev, test, v, test_args, line);
      if (r == keep_if) out.push_back(x);
    }
  return Value::lazy_list(to_json_list(ev, out, line), "generator");
}
Value f_select(Evaluator& ev, const Value& in, CallArgs& a, int line) { return select_impl(ev, in, a, line, false, true); }
Value f_reject(Evaluator& ev, const Value& in, CallArgs& a, int line) { return select_impl(ev, in, a, line, false, false); }
Value f_selectattr(Evaluator& ev, const Value& in, CallArgs& a, int line) { return select_impl(ev, in, a, line, true, true); }
Value f_rejectattr(Evaluator& ev, const Value& in, CallArgs& a, int line) { return select_impl(ev, in, a, line, true, false); }
Value f_map(Evaluator& ev, const Value& in, CallArgs& a, int line) {
  std::vector<Value> out;
  if (!truthy(in)) return Value::lazy_list(Json::array(), "generator");  // jinja2: `if value: for item in value`
  Value attr = a.get(99, "attribute");
  if (!attr.is_undefined()) {
    Value dflt = a.get(99, "default");
    for (const auto& x : as_list(ev, in, line, "map")) {
      Value v = get_path(x, to_str(attr));
      out.push_back(v.is_undefined() && !dflt.is_undefined() ? dflt : v);
    }
  } else {
    if (a.args.empty()) ev.error(line, "map needs a filter name or attribute=");
    std::string filter = to_str(a.args[0]);
    CallArgs rest;
    rest.args.assign(a.args.begin() + 1, a.args.end());
    rest.kwargs = a.kwargs;
    for (const auto& x : as_list(ev, in, line, "map")) out.push_back(apply_filter(ev, filter, x, rest, line));
  }
  for (auto& v : out)
    if (v.is_undefined()) v = Value(Json(nullptr));  // undefined items print as "" but are kept as None in lists
  return Value::lazy_list(to_json_list(ev, out, line), "generator");
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"trim", f_trim},           {"length", f_length},     {"count", f_length},       {"tojson", f_tojson},
      {"string", f_string},       {"upper", f_upper},       {"lower", f_lower},        {"capitalize", f_capitalize},
      {"title", f_title},         {"first", f_first},       {"last", f_last},          {"join", f_join},
      {"default", f_default},     {"d", f_default},         {"items", f_items},        {"list", f_list},
      {"replace", f_replace},     {"safe", f_safe},         {"escape", f_escape},      {"e", f_escape},
      {"int", f_int},             {"float", f_float},       {"abs", f_abs},            {"round", f_round},
      {"unique", f_unique},       {"reverse", f_reverse},   {"sort", f_sort},          {"indent", f_indent},
      {"sum", f_sum},             {"min", f_min},           {"max", f_max},            {"dictsort", f_dictsort},
      {"select", f_select},       {"reject", f_reject},     {"selectattr", f_selectattr},
      {"rejectattr", f_rejectattr}, {"map", f_map},         {"format", f_format},      {"wordcount", f_wordcount},
      {"batch", f_batch},
  };
  return table;
}

// ---------------------------------------------------------------- tests
bool t_defined(Evaluator&, const Value& v, CallArgs&, int) { return !v.is_undefined(); }
bool t_undefined(Evaluator&, const Value& v, CallArgs&, int) { return v.is_undefined(); }
bool t_none(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && v.j.is_null(); }
bool t_string(Evaluator&, const Value& v, CallArgs&, int) { return v.is_string(); }
bool t_mapping(Evaluator&, const Value& v, CallArgs&, int) { return (v.is_json() && v.j.is_object()) || v.kind == Value::Kind::ns; }
bool t_iterable(Evaluator&, const Value& v, CallArgs&, int) {
  return v.is_undefined() || (v.is_json() && (v.j.is_array() || v.j.is_object() || v.j.is_string()));
}
bool t_sequence(Evaluator&, const Value& v, CallArgs&, int) {
  return v.is_json() && (v.j.is_array() || v.j.is_object() || v.j.is_string());
}
bool t_number(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && (v.j.is_number() || v.j.is_boolean()); }
bool t_integer(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && v.j.is_number_integer(); }
bool t_float(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && v.j.is_number_float(); }
bool t_boolean(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && v.j.is_boolean(); }
bool t_true(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && v.j.is_boolean() && v.j.get<bool>(); }
bool t_false(Evaluator&, const Value& v, CallArgs&, int) { return v.is_json() && v.j.is_boolean() && !v.j.get<bool>(); }
bool t_callable(Evaluator&, const Value& v, CallArgs&, int) { return v.kind == Value::Kind::func; }
bool t_eq(Evaluator&, const Value& v, CallArgs& a, int) { return values_equal(v, a.get(0, "other")); }
bool t_ne(Evaluator&, const Value& v, CallArgs& a, int) { return !values_equal(v, a.get(0, "other")); }
double num(Evaluator& ev, const Value& v, int line) {
  if (!v.is_json() || !(v.j.is_number() || v.j.is_boolean())) ev.error(line, std::string("expected a number, got ") + kind_of(v));
  return v.j.is_boolean() ? (v.j.get<bool>() ? 1 : 0) : v.j.get<double>();
}
bool t_gt(Evaluator& ev, const Value& v, CallArgs& a, int l) { return num(ev, v, l) > num(ev, a.get(0, "other"), l); }
bool t_ge(Evaluator& ev, const Value& v, CallArgs& a, int l) { return num(ev, v, l) >= num(ev, a.get(0, "other"), l); }
bool t_lt(Evaluator& ev, const Value& v, CallArgs& a, int l) { return num(ev, v, l) < num(ev, a.get(0, "other"), l); }
bool t_le(Evaluator& ev, const Value& v, CallArgs& a, int l) { return num(ev, v, l) <= num(ev, a.get(0, "other"), l); }
bool t_odd(Evaluator& ev, const Value& v, CallArgs&, int l) { return need_int(ev, v, l, "odd", 0) % 2 != 0; }
bool t_even(Evaluator& ev, const Value& v, CallArgs&, int l) { return need_int(ev, v, l, "even", 0) % 2 == 0; }
bool t_divisibleby(Evaluator& ev, const Value& v, CallArgs& a, int l) {
  int64_t d = need_int(ev, a.get(0, "num"), l, "divisibleby", 1);
  if (d == 0) ev.error(l, "divisibleby(0)");
  return need_int(ev, v, l, "divisibleby", 0) % d == 0;
}
bool t_in(Evaluator& ev, const Value& v, CallArgs& a, int l) {
  Value c = a.get(0, "seq");
  if (c.is_string() && v.is_string()) return c.j.get<std::string>().find(v.j.get<std::string>()) != std::string::npos;
  for (const auto& x : as_list(ev, c, l, "in"))
    if (values_equal(x, v)) return true;
  return false;
}
bool t_lower(Evaluator&, const Value& v, CallArgs&, int) { return v.is_string() && map_case(v.j.get<std::string>(), -1) == v.j.get<std::string>(); }
bool t_upper(Evaluator&, const Value& v, CallArgs&, int) { return v.is_string() && map_case(v.j.get<std::string>(), 1) == v.j.get<std::string>(); }

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", t_defined},   {"undefined", t_undefined}, {"none", t_none},         {"string", t_string},
      {"mapping", t_mapping},   {"iterable", t_iterable},   {"sequence", t_sequence}, {"number", t_number},
      {"integer", t_integer},   {"float", t_float},         {"boolean", t_boolean},   {"true", t_true},
      {"false", t_false},       {"callable", t_callable},   {"equalto", t_eq},        {"eq", t_eq},
      {"==", t_eq},             {"sameas", t_eq},           {"ne", t_ne},             {"!=", t_ne},
      {"gt", t_gt},             {"greaterthan", t_gt},      {">", t_gt},              {"ge", t_ge},
      {">=", t_ge},             {"lt", t_lt},               {"lessthan", t_lt},       {"<", t_lt},
      {"le", t_le},             {"<=", t_le},               {"odd", t_odd},           {"even", t_even},
      {"divisibleby", t_divisibleby}, {"in", t_in},         {"lower", t_lower},       {"upper", t_upper},
  };
  return table;
}

template <typename Table>
std::string names_of(const Table& t) {
  std::vector<std::string> ns;
  for (const auto& kv : t) ns.push_back(kv.first);
  std::sort(ns.begin(), ns.end());
  std::string out;
  for (const auto& n : ns) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args, int line) {
  auto it = filters().find(name);
  if (it == filters().end())
    ev.error(line, "unknown filter '" + name + "' (supported: " + names_of(filters()) + ")");
  return it->second(ev, input, args, line);
}

bool apply_test(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args, int line) {
  auto it = tests().find(name);
  if (it == tests().end()) ev.error(line, "unknown test '" + name + "' (supported: " + names_of(tests()) + ")");
  return it->second(ev, input, args, line);
}

// ---------------------------------------------------------------- methods
Value call_method(Evaluator& ev, const Value& obj, const std::string& name, CallArgs& a, int line) {
  const Json& j = obj.j;
  auto unknown = [&]() {
    ev.error(line, "unknown method '" + name + "' on a " + std::string(j.type_name()) +
                       " value (supported: str.startswith/endswith/strip/lstrip/rstrip/split/rsplit/replace/upper/"
                       "lower/title/capitalize/find/count/join/splitlines, dict.get/items/keys/values)");
  };
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (name == "startswith" || name == "endswith") {
      Value p = a.get(0, "prefix");
      std::vector<std::string> cands;
      if (p.is_string()) {
        cands.push_back(p.j.get<std::string>());
      } else if (p.is_json() && p.j.is_array()) {
        for (const auto& x : p.j) cands.push_back(x.get<std::string>());
      } else {
        ev.error(line, name + " expects a string or a tuple of strings");
      }
      for (const auto& c : cands) {
        if (c.size() > s.size()) continue;
        if (name == "startswith" ? s.compare(0, c.size(), c) == 0 : s.compare(s.size() - c.size(), c.size(), c) == 0)
          return Json(true);
      }
      return Json(false);
    }
    if (name == "strip") return Json(strip(s, a.get(0, "chars"), true, true));
    if (name == "lstrip") return Json(strip(s, a.get(0, "chars"), true, false));
    if (name == "rstrip") return Json(strip(s, a.get(0, "chars"), false, true));
    if (name == "split" || name == "rsplit")
      return split(s, a.get(0, "sep"), need_int(ev, a.get(1, "maxsplit"), line, "maxsplit", -1), name == "rsplit");
    if (name == "replace")
      return Json(replace_all(s, need_str(ev, a.get(0, "old"), line, "replace"), need_str(ev, a.get(1, "new"), line, "replace"),
                              need_int(ev, a.get(2, "count"), line, "replace(count)", -1)));
    if (name == "upper") return Json(map_case(s, 1));
    if (name == "lower") return Json(map_case(s, -1));
    if (name == "title") return Json(title(s));
    if (name == "capitalize") return Json(capitalize(s));
    if (name == "find") {
      size_t p = s.find(need_str(ev, a.get(0, "sub"), line, "find"));
      if (p == std::string::npos) return Json(-1);
      return Json(utf8_chars(s.substr(0, p)).size());
    }
    if (name == "count") {
      std::string sub = need_str(ev, a.get(0, "sub"), line, "count");
      if (sub.empty()) return Json(utf8_chars(s).size() + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Json(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const auto& x : as_list(ev, a.get(0, "iterable"), line, "join")) {
        if (!first) out += s;
        first = false;
        out += need_str(ev, x, line, "str.join");
      }
      return Json(out);
    }
    if (name == "splitlines") {  // line boundaries: \n \r \r\n \v \f \x1c \x1d \x1e U+0085 U+2028 U+2029
      Json out = Json::array();
      const bool keepends = truthy(a.get(0, "keepends"));
      std::string ln;
      auto cs = utf8_chars(s);
      for (size_t k = 0; k < cs.size(); ++k) {
        uint32_t c = decode_cp(cs[k]);
        bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 ||
                   c == 0x2028 || c == 0x2029;
        if (!brk) {
          ln += cs[k];
          continue;
        }
        std::string end = cs[k];
        if (c == '\r' && k + 1 < cs.size() && cs[k + 1] == "\n") end += cs[++k];
        out.push_back(keepends ? ln + end : ln);
        ln.clear();
      }
      if (!ln.empty()) out.push_back(ln);
      return out;
    }
    unknown();
  }
  if (j.is_object()) {
    if (name == "get") {
      if (auto key = lookup_key(a.get(0, "key"))) {
        auto it = j.find(*key);
        if (it != j.end()) return *it;
      }
      Value d = a.get(1, "default");
      return d.is_undefined() ? Value(Json(nullptr)) : d;
    }
    if (name == "items") {
      CallArgs none;
      Value items = f_items(ev, obj, none, line);
      items.lazy = "dict_items";
      return items;
    }
    if (name == "keys") {
      Json out = Json::array();
      for (auto it = j.begin(); it != j.end(); ++it) out.push_back(key_value(it.key()));
      return Value::lazy_list(std::move(out), "dict_keys");
    }
    if (name == "values") {
      Json out = Json::array();
      for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.value());
      return Value::lazy_list(std::move(out), "dict_values");
    }
    unknown();
  }
  unknown();
  return Value();
}

// ---------------------------------------------------------------- globals
void install_globals(Frame& g) {
  auto fn = [](Function f) {
    Value v;
    v.kind = Value::Kind::func;
    v.fn = std::make_shared<Function>(std::move(f));
    return v;
  };
  g.vars["raise_exception"] = fn([](Evaluator& ev, CallArgs& a, int line) -> Value {
    ev.error(line, "the template raised an exception: " + to_str(a.get(0, "message")));
  });
  g.vars["strftime_now"] = fn([](Evaluator& ev, CallArgs& a, int line) -> Value {
    std::string fmt = need_str(ev, a.get(0, "format"), line, "strftime_now");
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
    return Json(std::string(buf, n));
  });
  // transformers' TemplateNamespace: a jinja2 Namespace that refuses underscore-prefixed attributes
  g.vars["namespace"] = fn([](Evaluator& ev, CallArgs& a, int line) -> Value {
    Value v;
    v.kind = Value::Kind::ns;
    v.ns = std::make_shared<Namespace>();
    auto put = [&](const std::string& key, const Value& x) {
      if (!key.empty() && key[0] == '_')
        ev.error(line, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" + key +
                           "'. Please rename the attribute.");
      v.ns->set(key, x);
    };
    for (const auto& arg : a.args)  // namespace(dict) copies the dict's items
      if (arg.is_json() && arg.j.is_object())
        for (auto it = arg.j.begin(); it != arg.j.end(); ++it) put(it.key(), Value(it.value()));
    for (const auto& kv : a.kwargs) put(kv.first, kv.second);
    return v;
  });
  // jinja2's joiner(sep=", "): a callable giving "" the first time and `sep` after that
  g.vars["joiner"] = fn([fn](Evaluator& ev, CallArgs& a, int line) -> Value {
    Value sep = a.get(0, "sep");
    std::string s = sep.is_undefined() ? ", " : need_str(ev, sep, line, "joiner(sep)");
    auto used = std::make_shared<bool>(false);
    return fn([s, used](Evaluator&, CallArgs&, int) -> Value {
      if (!*used) {
        *used = true;
        return Json("");
      }
      return Json(s);
    });
  });
  g.vars["range"] = fn([](Evaluator& ev, CallArgs& a, int line) -> Value {
    int64_t start = 0, stop = 0, step = 1;
    if (a.args.size() == 1) {
      stop = need_int(ev, a.args[0], line, "range", 0);
    } else if (a.args.size() >= 2) {
      start = need_int(ev, a.args[0], line, "range", 0);
      stop = need_int(ev, a.args[1], line, "range", 0);
      if (a.args.size() >= 3) step = need_int(ev, a.args[2], line, "range", 1);
    }
    if (step == 0) ev.error(line, "range() step must not be zero");
    // transformers renders templates in jinja2's sandbox, whose range() stops at 100,000 items.
    const __int128 span = step > 0 ? __int128(stop) - start : __int128(start) - stop;
    const __int128 count = span <= 0 ? 0 : (span + (step > 0 ? step : -__int128(step)) - 1) / (step > 0 ? step : -__int128(step));
    if (count > 100000) ev.error(line, "range too big, maximum size for range is 100000");
    Json out = Json::array();
    for (__int128 k = 0; k < count; ++k) out.push_back(static_cast<int64_t>(start + k * step));
    return Value::lazy_list(std::move(out), "range");
  });
  // transformers' TemplateDict: dict(mapping or iterable of pairs, **kwargs)
  g.vars["dict"] = fn([](Evaluator& ev, CallArgs& a, int line) -> Value {
    Json out = Json::object();
    if (a.args.size() > 1) ev.error(line, "dict expected at most 1 argument, got " + std::to_string(a.args.size()));
    if (!a.args.empty()) {
      const Value& src = a.args[0];
      if (!src.is_json() || !(src.j.is_object() || src.j.is_array()))
        ev.error(line, "dict(): the argument must be a mapping or an iterable of (key, value) pairs");
      if (src.j.is_object()) {
        out = src.j;
      } else {
        for (const auto& pair : src.j) {
          if (!pair.is_array() || pair.size() != 2)
            ev.error(line, "dict(): each element of the sequence must be a (key, value) pair");
          out[dict_key(ev, Value(pair[0]), line)] = pair[1];
        }
      }
    }
    for (const auto& kv : a.kwargs) {
      if (!kv.second.is_json()) ev.error(line, "dict(): values must be data");
      out[kv.first] = kv.second.j;
    }
    return out;
  });
}

}  // namespace rlhf::jinja

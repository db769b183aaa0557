// Jinja lexer: template source -> tokens, with the whitespace rules of jinja2's lexer under transformers' settings:
//   - "\r\n" and "\r" become "\n"; one trailing "\n" of the source is dropped (keep_trailing_newline=False).
//   - `{%-` / `{{-` / `{#-` strip all whitespace before the tag; `-%}` / `-}}` / `-#}` strip all whitespace after.
//   - trim_blocks: the first "\n" right after `%}` or `#}` is removed.
//   - lstrip_blocks: spaces/tabs between the start of a line and `{%` / `{#` are removed (not before `{{`, not `{%+`).
#include <cctype>
#include <cstring>

#include "tokenizer/jinja_ast.h"

namespace rlhf::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string rstrip_ws(const std::string& s) {
  size_t n = s.size();
  while (n > 0 && is_space(s[n - 1])) --n;
  return s.substr(0, n);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct Lexer {
  std::string src;
  std::string name;
  size_t pos = 0;
  int line = 1;
  std::vector<Token> out;

  [[noreturn]] void error(const std::string& msg) const { fail(name, " line ", line, ": ", msg); }

  void advance(size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (src[pos + i] == '\n') ++line;
    pos += n;
  }

  bool starts(const char* s) const { return src.compare(pos, std::strlen(s), s) == 0; }

  // Python string literal body (jinja uses ast.literal_eval): the common escapes and \xNN \uNNNN \UNNNNNNNN.
  std::string read_string() {
    char quote = src[pos];
    int start_line = line;
    advance(1);
    std::string s;
    while (true) {
      if (pos >= src.size()) fail(name, " line ", start_line, ": unterminated string literal");
      char c = src[pos];
      if (c == quote) {
        advance(1);
        return s;
      }
      if (c != '\\') {
        s += c;
        advance(1);
        continue;
      }
      if (pos + 1 >= src.size()) error("unterminated string literal");
      char e = src[pos + 1];
      advance(2);
      switch (e) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case '\\': s += '\\'; break;
        case '\'': s += '\''; break;
        case '"': s += '"'; break;
        case '0': s += '\0'; break;
        case 'a': s += '\a'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'v': s += '\v'; break;
        case '\n': break;  // line continuation
        case 'x': case 'u': case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos + n > src.size()) error(std::string("truncated \\") + e + " escape in string literal");
          for (size_t k = 0; k < n; ++k)
            if (!std::isxdigit(static_cast<unsigned char>(src[pos + k])))
              error(std::string("invalid \\") + e + " escape in string literal (expected " + std::to_string(n) +
                    " hex digits)");
          uint32_t cp = static_cast<uint32_t>(std::stoul(src.substr(pos, n), nullptr, 16));
          if (cp > 0x10FFFF) error(std::string("\\") + e + " escape beyond U+10FFFF in string literal");
          advance(n);
          append_utf8(s, cp);
          break;
        }
        default:  // Python keeps unknown escapes verbatim
          s += '\\';
          s += e;
      }
    }
  }

  // Tokens inside {{ }} or {% %} up to the end tag; returns true when the end tag had '-'.
  bool lex_tag(bool block) {
    const char* end = block ? "%}" : "}}";
    const char* end_strip = block ? "-%}" : "-}}";
    int depth = 0;  // (), [], {} nesting: an end tag only counts at depth 0, as in jinja
    int tag_line = line;
    while (true) {
      while (pos < src.size() && is_space(src[pos])) advance(1);
      if (pos >= src.size()) fail(name, " line ", tag_line, ": unclosed ", block ? "'{%'" : "'{{'", " tag");
      if (depth == 0 && starts(end_strip)) {
        advance(3);
        return true;
      }
      if (depth == 0 && starts(end)) {
        advance(2);
        return false;
      }
      char c = src[pos];
      if (c == '\'' || c == '"') {
        int l = line;
        std::string s = read_string();
        out.push_back({Tok::string, s, l});
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = pos;
        while (pos < src.size() && (std::isalnum(static_cast<unsigned char>(src[pos])) || src[pos] == '_')) ++pos;
        out.push_back({Tok::name, src.substr(b, pos - b), line});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t b = pos;
        bool is_float = false;
        while (pos < src.size() && (std::isdigit(static_cast<unsigned char>(src[pos])) || src[pos] == '_')) ++pos;
        if (pos + 1 < src.size() && src[pos] == '.' && std::isdigit(static_cast<unsigned char>(src[pos + 1]))) {
          is_float = true;
          ++pos;
          while (pos < src.size() && std::isdigit(static_cast<unsigned char>(src[pos]))) ++pos;
        }
        if (pos < src.size() && (src[pos] == 'e' || src[pos] == 'E')) {
          size_t q = pos + 1;
          if (q < src.size() && (src[q] == '+' || src[q] == '-')) ++q;
          if (q < src.size() && std::isdigit(static_cast<unsigned char>(src[q]))) {
            is_float = true;
            pos = q;
            while (pos < src.size() && std::isdigit(static_cast<unsigned char>(src[pos]))) ++pos;
          }
        }
        std::string num;
        for (size_t i = b; i < pos; ++i)
          if (src[i] != '_') num += src[i];
        out.push_back({is_float ? Tok::floating : Tok::integer, num, line});
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "=",  ".",  ",",  ":",  "|",  "(",  ")", "[", "]", "{", "}", ";"};
        const char* found = nullptr;
        for (const char* op : ops)
          if (starts(op)) {
            found = op;
            break;
          }
        if (!found) error(std::string("unexpected character '") + c + "' inside a tag");
        std::string op = found;
        if (op == "(" || op == "[" || op == "{") ++depth;
        if (op == ")" || op == "]" || op == "}") {
          if (depth == 0) error("unexpected '" + op + "'");
          --depth;
        }
        out.push_back({Tok::op, op, line});
        advance(op.size());
      }
    }
  }

  // After {% raw %}: everything up to {% endraw %} is text, with the whitespace rules of any block tag at its
  // end ('-' strips before it, lstrip_blocks, trim_blocks after it).
  void lex_raw() {
    int raw_line = line;
    for (size_t p = src.find("{%", pos); p != std::string::npos; p = src.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = q < src.size() && (src[q] == '-' || src[q] == '+') ? src[q++] : '\0';
      while (q < src.size() && is_space(src[q])) ++q;
      if (src.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src.size() && is_space(src[q])) ++q;
      bool strip_after = q < src.size() && src[q] == '-';
      if (strip_after) ++q;
      if (src.compare(q, 2, "%}") != 0) continue;
      std::string text = src.substr(pos, p - pos);
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+') {  // lstrip_blocks: only whitespace between the line start and {% endraw %}
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        bool all_ws = l_pos < text.size();
        for (size_t i = l_pos; i < text.size(); ++i)
          if (!is_space(text[i])) all_ws = false;
        if (all_ws && (l_pos > 0 || (pos > 0 && src[pos - 1] == '\n'))) text = text.substr(0, l_pos);
      }
      if (!text.empty()) out.push_back({Tok::text, text, line});
      advance(q + 2 - pos);
      if (strip_after) {
        skip_ws_after();
      } else if (pos < src.size() && src[pos] == '\n') {
        advance(1);  // trim_blocks
      }
      return;
    }
    fail(name, " line ", raw_line, ": '{% raw %}' is never closed (expected '{% endraw %}')");
  }

  void skip_ws_after() {
    while (pos < src.size() && is_space(src[pos])) advance(1);
  }

  void run() {
    bool line_starting = true;  // the previous token ended with "\n" (or we are at the start)
    while (pos < src.size()) {
      size_t tag = std::string::npos;
      for (size_t p = src.find('{', pos); p != std::string::npos; p = src.find('{', p + 1)) {
        if (p + 1 < src.size() && (src[p + 1] == '{' || src[p + 1] == '%' || src[p + 1] == '#')) {
          tag = p;
          break;
        }
      }
      std::string text = src.substr(pos, (tag == std::string::npos ? src.size() : tag) - pos);
      if (tag == std::string::npos) {
        if (!text.empty()) out.push_back({Tok::text, text, line});
        advance(text.size());
        break;
      }
      char type = src[tag + 1];
      char sign = tag + 2 < src.size() ? src[tag + 2] : '\0';
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+' && type != '{') {  // lstrip_blocks
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool all_ws = l_pos < text.size();
          for (size_t i = l_pos; i < text.size(); ++i)
            if (!is_space(text[i])) all_ws = false;
          if (all_ws) text = text.substr(0, l_pos);
        }
      }
      int text_line = line;
      advance(tag - pos);
      if (!text.empty()) out.push_back({Tok::text, text, text_line});
      advance(2 + ((sign == '-' || sign == '+') ? 1 : 0));
      bool strip_after = false;
      if (type == '#') {
        size_t e = src.find("#}", pos);
        if (e == std::string::npos) error("unclosed comment '{#'");
        strip_after = e > pos && src[e - 1] == '-';
        advance(e + 2 - pos);
        if (strip_after) {
          skip_ws_after();
        } else if (pos < src.size() && src[pos] == '\n') {
          advance(1);  // trim_blocks
        }
      } else if (type == '%') {
        const size_t first = out.size();
        out.push_back({Tok::block_begin, "", line});
        strip_after = lex_tag(true);
        out.push_back({Tok::block_end, "", line});
        const bool raw = out.size() == first + 3 && out[first + 1].kind == Tok::name && out[first + 1].value == "raw";
        if (strip_after) {
          skip_ws_after();
        } else if (!raw && pos < src.size() && src[pos] == '\n') {
          advance(1);  // trim_blocks (not after {% raw %}: jinja2's raw_begin rule has no block suffix)
        }
        if (raw) {
          out.resize(first);
          lex_raw();
        }
      } else {
        out.push_back({Tok::var_begin, "", line});
        strip_after = lex_tag(false);
        out.push_back({Tok::var_end, "", line});
        if (strip_after) skip_ws_after();
      }
      line_starting = pos > 0 && src[pos - 1] == '\n';
    }
    out.push_back({Tok::eof, "", line});
  }
};

}  // namespace

std::vector<Token> lex(const std::string& source, const std::string& name) {
  Lexer lx;
  lx.name = name;
  lx.src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      lx.src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      lx.src += source[i];
    }
  }
  if (!lx.src.empty() && lx.src.back() == '\n') lx.src.pop_back();  // keep_trailing_newline=False
  lx.run();
  return lx.out;
}

}  // namespace rlhf::jinja

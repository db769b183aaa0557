#include "rlhf/html.h"

#include <cmath>
#include <cstdio>

namespace rlhf::html {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_number(double v, int digits) {
  if (!std::isfinite(v)) return "\u2014";
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 1000 && a < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a != 0 && (a < 1e-4 || a >= 1e15)) std::snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
  else std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  std::string s = buf;
  return s == "-0" ? "0" : s;
}

std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace rlhf::html

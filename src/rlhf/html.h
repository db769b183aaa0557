// Small helpers for writing HTML by hand (the run report): escaping text and formatting numbers.
// No torch, no allocation tricks: strings in, strings out.
#pragma once
#include <string>
#include <string_view>

namespace rlhf::html {

// Escapes text for an HTML text node or a double- or single-quoted attribute: & < > " ' become entities.
//   escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
std::string escape(std::string_view text);

// A number for people: "—" for NaN/inf, no exponent between 1e-4 and 1e6, about `digits` significant digits,
// integers (|v| >= 1000) without a fraction. format_number(0.73412) == "0.734", format_number(12345.6) == "12346".
std::string format_number(double v, int digits = 3);

// A number for an SVG coordinate: fixed, two decimals ("12.50"); never "nan" (callers filter non-finite values).
std::string coord(double v);

}  // namespace rlhf::html

// A small Jinja2 interpreter for chat templates, rendering exactly as transformers does:
//   jinja2.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, generation])
//   with the globals raise_exception(msg) and strftime_now(fmt) and transformers' own `tojson` filter
//   (json.dumps(x, ensure_ascii=False, indent=..., sort_keys=...)).
//
// Supported: {{ }}, {% %}, {# #}, whitespace control (-), trim_blocks, lstrip_blocks, and the trailing-newline rule
// (one final "\n" of the source is dropped, as keep_trailing_newline=False does).
//   statements: if/elif/else, for (else, `if` filter, tuple unpacking, loop.index0/index/revindex/first/last/length/
//               previtem/nextitem/cycle(), break/continue inside a loop only), set (incl. ns.attr, tuples, block
//               set with filters), macro + call/caller (closures over the scope they are defined in), raw,
//               generation (transparent), filter blocks.
//   expressions: literals, lists, dicts (any scalar as a key), tuples, attribute/item access, slices, calls with
//               keyword arguments, *args and **kwargs, filters, tests, `in`/`not in`, `is`/`is not`, ~, arithmetic,
//               chained comparisons, `x if c else y`; Markup from |safe/|escape (`+` escapes the other operand).
//   globals: raise_exception, strftime_now, namespace (no "_" attributes), dict, range, joiner.
// Known differences, all in what is printed, none in what a chat template computes: a tuple prints as a list, and
// a generator or range prints its items (jinja2 prints "<generator object ...>", "range(0, 3)").
//   filters, tests, string/dict methods: see jinja_builtins.cpp (one table each).
// Anything else (an unknown filter/test/method/statement) is an rlhf::Error naming the construct and the template
// line: a template is never rendered silently wrong.
//
// Values are JSON (nlohmann::ordered_json: key order is kept as Python dicts keep it, which `tojson` shows), plus
// internal kinds for undefined, namespace() objects and callables (macros, globals).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace rlhf::jinja {

using Json = nlohmann::ordered_json;

struct Program;  // the parsed template (jinja_parser.cpp)

class Template {
 public:
  // Parses `source`; syntax errors throw rlhf::Error "<name> line N: ...". `name` appears in every error message.
  explicit Template(const std::string& source, std::string name = "template");
  // Renders with `context` (a JSON object: variable name -> value).
  std::string render(const Json& context) const;

 private:
  std::shared_ptr<const Program> program_;
  std::string name_;
};

// One-shot parse + render.
std::string render(const std::string& source, const Json& context, const std::string& name = "template");

}  // namespace rlhf::jinja

// Jinja interpreter features against jinja2 3.1.6 with transformers' settings
// (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]), tojson as
// json.dumps(ensure_ascii=False)). Every expected string below was rendered by that Python environment; the
// generator is the table itself: for (tmpl, ctx, expected) print env.from_string(tmpl).render(**ctx).
#include <gtest/gtest.h>

#include "common/error.h"
#include "tokenizer/jinja.h"

using rlhf::jinja::Json;

namespace {

struct Case {
  const char* tmpl;
  const char* ctx;
  const char* expected;
};

const Case kCases[] = {
    {R"J(hello {{ name }}!)J",
     R"J({"name": "x"})J",
     R"J(hello x!)J"},
    {R"J({% if a %}
  yes
{% else %}
  no
{% endif %}
)J",
     R"J({"a": true})J",
     R"J(  yes
)J"},
    {R"J(  {% if a %}
  yes
  {%- endif %}  
z)J",
     R"J({"a": true})J",
     R"J(  yes  
z)J"},
    {R"J({%- for x in xs -%}
 {{ x }},
{%- endfor %}

)J",
     R"J({"xs": [1, 2, 3]})J",
     R"J(1,2,3,)J"},
    {R"J({% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}|{% endfor %})J",
     R"J({"xs": ["a", "b", "c"]})J",
     R"J(01TrueFalse33|12FalseFalse32|23FalseTrue31|)J"},
    {R"J({% for x in xs %}{{x}}{% else %}empty{% endfor %})J",
     R"J({"xs": []})J",
     R"J(empty)J"},
    {R"J({% for k, v in d.items() %}{{k}}={{v}};{% endfor %})J",
     R"J({"d": {"b": 1, "a": [1, "x"]}})J",
     R"J(b=1;a=[1, 'x'];)J"},
    {R"J({{ d }} {{ [1, 'a', none, true, 1.5] }} {{ 'it''s' }} {{ "it's" }})J",
     R"J({"d": {"b": 1, "a": {"c": null}}})J",
     R"J({'b': 1, 'a': {'c': None}} [1, 'a', None, True, 1.5] its it's)J"},
    {R"J({{ 1/2 }} {{ 7//2 }} {{ -7//2 }} {{ 7 % 3 }} {{ 2**10 }} {{ 1e20 }} {{ 0.1+0.2 }} {{ 1e-5 }} {{ 3.0 }} {{ 123456789012345678.0 }})J",
     R"J({})J",
     R"J(0.5 3 -4 1 1024 1e+20 0.30000000000000004 1e-05 3.0 1.2345678901234568e+17)J"},
    {R"J({{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1]+[2] }})J",
     R"J({})J",
     R"J(a1None ababab [1, 2])J"},
    {R"J({% set ns = namespace(x=1, y=[]) %}{% for i in range(3) %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }})J",
     R"J({})J",
     R"J(4)J"},
    {R"J({% set x = 1 %}{% for i in [1] %}{% set x = 5 %}{{x}}{% endfor %}{{ x }})J",
     R"J({})J",
     R"J(51)J"},
    {R"J({{ s[::-1] }} {{ s[1:3] }} {{ s[-1] }} {{ xs[::-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ s|length }})J",
     R"J({"s": "héllo", "xs": [1, 2, 3]})J",
     R"J(olléh él o [3, 2, 1] [2, 3] [1, 2] 5)J"},
    {R"J({{ x | tojson }} {{ x | tojson(indent=2) }} {{ 'é"\n' | tojson }} {{ [] | tojson(indent=4) }})J",
     R"J({"x": {"b": [1, 2.5, {"z": null}], "a": "ü"}})J",
     R"J({"b": [1, 2.5, {"z": null}], "a": "ü"} {
  "b": [
    1,
    2.5,
    {
      "z": null
    }
  ],
  "a": "ü"
} "é\"\n" [])J"},
    {R"J({{ ' a b '|trim }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ [1,2]|first }}|{{ [1,2]|last }}|{{ [1,2,3]|join(', ') }}|{{ u|default('d') }}|{{ ''|default('d', true) }}|{{ 'hello world'|capitalize }}|{{ 'hello world'|title }})J",
     R"J({})J",
     R"J(a b|ABC|abc|1|2|1, 2, 3|d|d|Hello world|Hello World)J"},
    {R"J({{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a.b.c'.rsplit('.', 1) }} {{ 'xxhixx'.strip('x') }} {{ '\n\nhi\n'.lstrip('\n') }} {{ 'abc'.replace('b','Z') }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x','c')) }})J",
     R"J({})J",
     R"J(['a', 'b', '', 'c'] ['a', 'b'] ['a.b', 'c'] hi hi
 aZc True True)J"},
    {R"J({{ d.get('a') }} {{ d.get('z', 5) }} {{ d.get('z') }} {{ d.keys()|list }} {{ d.values()|list }})J",
     R"J({"d": {"a": 1}})J",
     R"J(1 5 None ['a'] [1])J"},
    {R"J({% if x is defined %}D{% endif %}{% if y is not defined %}U{% endif %}{% if n is none %}N{% endif %}{% if s is string %}S{% endif %}{% if d is mapping %}M{% endif %}{% if xs is iterable %}I{% endif %}{% if 1 is number %}#{% endif %}{% if true is boolean %}B{% endif %}{% if 3 is odd %}O{% endif %}{% if 'a' is in 'abc' %}IN{% endif %}{% if 1 is equalto 1 %}EQ{% endif %})J",
     R"J({"x": 1, "n": null, "s": "s", "d": {}, "xs": []})J",
     R"J(DUNSMI#BOINEQ)J"},
    {R"J({% macro m(a, b='B') %}[{{a}}|{{b}}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(a=3, b=4) }})J",
     R"J({})J",
     R"J([1|B][1|2][3|4])J"},
    {R"J({% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}inner{% endcall %})J",
     R"J({})J",
     R"J(<inner>)J"},
    {R"J({% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{x}}{% endfor %})J",
     R"J({"xs": [1, 2, 3, 4, 5]})J",
     R"J(13)J"},
    {R"J({% set x %}captured {{ 1 }}{% endset %}[{{ x }}])J",
     R"J({})J",
     R"J([captured 1])J"},
    {R"J({{ 'yes' if a else 'no' }} {{ 'yes' if b }}|{{ a and 'A' }} {{ b or 'B' }} {{ not a }})J",
     R"J({"a": true, "b": false})J",
     R"J(yes |A B False)J"},
    {R"J({{ 1 < 2 < 3 }} {{ 3 > 2 > 5 }} {{ 'a' in ['a'] }} {{ 'x' not in 'abc' }} {{ 1 == 1.0 }} {{ 'a' != 'b' }})J",
     R"J({})J",
     R"J(True False True True True True)J"},
    {R"J({{ xs|selectattr('a')|list }} {{ xs|selectattr('a','equalto',2)|list }} {{ xs|rejectattr('a')|list }} {{ xs|map(attribute='a')|list }} {{ ['a','b']|map('upper')|list }})J",
     R"J({"xs": [{"a": 1}, {"a": 0}, {"a": 2}]})J",
     R"J([{'a': 1}, {'a': 2}] [{'a': 2}] [{'a': 0}] [1, 0, 2] ['A', 'B'])J"},
    {R"J({{ xs|unique|list }} {{ xs|reverse|list }} {{ xs|sort }} {{ xs|sum }} {{ '3'|int + 1 }} {{ 'x'|int }} {{ 2|float }} {{ -3|abs }} {{ 2.567|round(1) }})J",
     R"J({"xs": [3, 1, 3, 2]})J",
     R"J([3, 1, 2] [2, 3, 1, 3] [1, 2, 3, 3] 9 4 0 2.0 3 2.6)J"},
    {R"J({{ x.y }})J",
     R"J({"x": {"y": "z"}})J",
     R"J(z)J"},
    {R"J({{ 'line1\nline2\n\nline3'|indent(2) }}|{{ 'a\nb'|indent(2, true) }})J",
     R"J({})J",
     R"J(line1
  line2

  line3|  a
  b)J"},
    {R"J({{ xs[5] }}|{{ d['zz'] }}|{{ d.zz }}|{{ none.x }})J",
     R"J({"xs": [1], "d": {}})J",
     R"J(|||)J"},
    {R"J({% for x in xs if x > 1 %}{{ loop.index }}:{{ x }} {% endfor %})J",
     R"J({"xs": [1, 2, 3]})J",
     R"J(1:2 2:3 )J"},
    {R"J({{ x|tojson }})J",
     R"J({"x": [1.0, 1e+100, -0.0, 123.456, 1e-07, 100.0]})J",
     R"J([1.0, 1e+100, -0.0, 123.456, 1e-07, 100.0])J"},
    {R"J({% for m in messages %}{{ loop.previtem }}/{{ loop.nextitem }} {% endfor %})J",
     R"J({"messages": [1, 2, 3]})J",
     R"J(/2 1/3 2/ )J"},
    {R"J(  {{ x }}
  {% if true %}
    t
  {% endif %}
)J",
     R"J({"x": 1})J",
     R"J(  1
    t
)J"},
    {R"J(a  {%- if true -%}  b  {%- endif -%}  c

)J",
     R"J({})J",
     R"J(abc
)J"},
    {R"J({{ '\u00e9\x41' }} {{ "tab\there" }})J",
     R"J({})J",
     R"J(éA tab	here)J"},
    {R"J({% set d = {'a': 1, 'b': [1,2]} %}{{ d['b'][1] }} {{ d.a }})J",
     R"J({})J",
     R"J(2 1)J"},
    {R"J({{ 10 - 2 - 3 }} {{ 2 * 3 + 4 }} {{ -2 ** 2 }} {{ (1 + 2) * 3 }} {{ 10 / 4 }} {{ 1 + 2.5 }})J",
     R"J({})J",
     R"J(5 10 4 9 2.5 3.5)J"},
    {R"J({{ true }} {{ none }} {{ True == 1 }})J",
     R"J({})J",
     R"J(True None True)J"},
};

TEST(Jinja, MatchesJinja2) {
  int i = 0;
  for (const auto& c : kCases) {
    SCOPED_TRACE("case " + std::to_string(i++) + ": " + c.tmpl);
    EXPECT_EQ(rlhf::jinja::render(c.tmpl, Json::parse(c.ctx)), c.expected);
  }
}

// The error message of rendering `tmpl`, or "" when it renders.
std::string error_of(const std::string& tmpl, const Json& ctx = Json::object()) {
  try {
    rlhf::jinja::render(tmpl, ctx, "tmpl");
  } catch (const rlhf::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Jinja, UnknownFilterNamesFilterAndLine) {
  std::string e = error_of("line one\n{{ 'x' }}\n{{ 'x' | frobnicate }}");
  EXPECT_NE(e.find("tmpl line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown filter 'frobnicate'"), std::string::npos) << e;
}

TEST(Jinja, UnknownTestMethodStatementAreErrors) {
  EXPECT_NE(error_of("{% if x is frob %}{% endif %}", {{"x", 1}}).find("unknown test 'frob'"), std::string::npos);
  EXPECT_NE(error_of("\n{{ 'a'.zfill(3) }}").find("line 2: unknown method 'zfill'"), std::string::npos);
  EXPECT_NE(error_of("{% include 'x' %}").find("unsupported statement '{% include %}'"), std::string::npos);
  EXPECT_NE(error_of("{% for x in y recursive %}{% endfor %}").find("recursive"), std::string::npos);
}

TEST(Jinja, SyntaxErrorsNameTheLine) {
  EXPECT_NE(error_of("a\n{% if x %}\nb").find("line 2: 'if' is never closed"), std::string::npos);
  EXPECT_NE(error_of("{{ x").find("unclosed '{{'"), std::string::npos);
  EXPECT_NE(error_of("{{ (1 }}").find("line 1"), std::string::npos);
}

TEST(Jinja, RuntimeErrors) {
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("unsupported operand types for +: 'str' and 'int'"), std::string::npos);
  EXPECT_NE(error_of("{{ u.x }}").find("'u' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ u + 'x' }}").find("'u' is undefined"), std::string::npos);
  EXPECT_NE(error_of("\n\n{{ raise_exception('roles must alternate') }}").find("line 3: the template raised an exception: roles must alternate"),
            std::string::npos);
  EXPECT_NE(error_of("{% set x.y = 1 %}").find("namespace()"), std::string::npos);
}

TEST(Jinja, TrailingNewlineAndCrLf) {
  EXPECT_EQ(rlhf::jinja::render("a\r\nb\n", Json::object()), "a\nb");
  EXPECT_EQ(rlhf::jinja::render("a\n\n", Json::object()), "a\n");
}

TEST(Jinja, StrftimeNowAndGeneration) {
  std::string year = rlhf::jinja::render("{{ strftime_now('%Y') }}", Json::object());
  EXPECT_EQ(year.size(), 4u);
  EXPECT_EQ(rlhf::jinja::render("a{% generation %}b{{ 1 }}{% endgeneration %}c", Json::object()), "ab1c");
}

TEST(Jinja, KeyOrderIsKept) {
  Json ctx = Json::parse(R"({"tool": {"name": "f", "arguments": {"z": 1, "a": 2}}})");
  EXPECT_EQ(rlhf::jinja::render("{{ tool | tojson }}", ctx), R"({"name": "f", "arguments": {"z": 1, "a": 2}})");
}

}  // namespace

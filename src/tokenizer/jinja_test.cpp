// Unit tests of the Jinja interpreter: each language feature chat templates use, checked against Python's jinja2.
// Every expected string in kRenderCases was rendered by jinja2 3.1.6 in transformers' chat-template environment
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, json.dumps tojson, raise_exception,
// strftime_now pinned to 2024-09-05 14:30:00) with kDefaultContext as variables. Errors are checked separately:
// the error type jinja2 raised and the line must appear in the message.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "tokenizer/jinja.h"

using slime::jinja::RenderOptions;
using slime::jinja::Template;
using ordered_json = nlohmann::ordered_json;

namespace {

// The variables of every kRenderCases row (an ordered document: dict order is visible in renders, as in Python).
const char* const kDefaultContext = R"({
  "xs": [1, 2, 3], "d": {"a": 1, "b": "two", "items": 5}, "s": "Hello World", "n": null,
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
  "words": ["b", "A", "a", "C"], "f": 2.5, "t": true, "u8": "h\u00e9llo w\u00f6rld \ud83d\ude00"})";

RenderOptions pinned_clock() {
  RenderOptions options;
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 8;
  t.tm_mday = 5;
  t.tm_hour = 14;
  t.tm_min = 30;
  t.tm_wday = 4;    // Thursday
  t.tm_yday = 248;  // 5 September 2024 is day 249 of a leap year
  options.now = t;
  return options;
}

std::string render(const std::string& source, const char* context = nullptr) {
  return Template(source, "test.jinja").render(ordered_json::parse(context ? context : kDefaultContext), pinned_clock());
}

struct RenderCase {
  const char* group;
  const char* source;
  const char* context;  // JSON, or nullptr for kDefaultContext
  const char* expected;
};

const RenderCase kRenderCases[] = {
// ---- whitespace
    {"whitespace", "{% if true %}\nx\n{% endif %}\ny", nullptr, "x\ny"},
    {"whitespace", "  {% if true %}\n  x\n  {% endif %}\ny", nullptr, "  x\ny"},
    {"whitespace", "  {{ 'a' }}\n  {{ 'b' }}\n", nullptr, "  a\n  b"},
    {"whitespace", "\t {% if true %}x{% endif %}|", nullptr, "x|"},
    {"whitespace", "a  {% if true %}x{% endif %}", nullptr, "a  x"},
    {"whitespace", "  {%+ if true %}x{% endif %}", nullptr, "  x"},
    {"whitespace", "{% if true +%}\nx{% endif %}", nullptr, "\nx"},
    {"whitespace", "a\n  {# comment #}\nb", nullptr, "a\nb"},
    {"whitespace", "a {#- c -#} b {# c #}\nd", nullptr, "ab d"},
    {"whitespace", "a\n\n  {%- if true %}b{% endif %}", nullptr, "ab"},
    {"whitespace", "{% if true -%}\n\n   b{% endif %}", nullptr, "b"},
    {"whitespace", "x {{- ' y ' -}} z", nullptr, "x y z"},
    {"whitespace", "x\n  {{- 'y' }}", nullptr, "xy"},
    {"whitespace", "a\n", nullptr, "a"},
    {"whitespace", "a\n\n", nullptr, "a\n"},
    {"whitespace", "a\r\nb{% if true %}\r\nc{% endif %}\rd", nullptr, "a\nbcd"},
    {"whitespace", "{% raw %}{{ x }}{% if %}{% endraw %}|", nullptr, "{{ x }}{% if %}|"},
    {"whitespace", "  {% raw %}\n  {{ x }}\n  {% endraw %}\nz", nullptr, "\n  {{ x }}\nz"},
    {"whitespace", "{% if true %}\n    {% if true %}x{% endif %}\n{% endif %}", nullptr, "x"},
    {"whitespace", "{% for i in xs %}\n  {{ i }}\n{% endfor %}", nullptr, "  1\n  2\n  3\n"},
    {"whitespace", "{%- for i in xs %}\n  {{- i }}\n{%- endfor %}", nullptr, "123"},
    {"whitespace", "a\u00a0\u3000{%- if true %}b{% endif %}", nullptr, "ab"},
    {"whitespace", "{{ 'a' }}  {% if true %}b{% endif %}", nullptr, "a  b"},
    {"whitespace", "x\n  {% set y = 1 %}\n{{ y }}", nullptr, "x\n1"},
    {"whitespace", "{{ 'a' }}\n{# c #}   \nb", nullptr, "a\n   \nb"},
    {"whitespace", "{%- if true -%}\n  a  \n{%- endif -%}\n", nullptr, "a"},
    {"whitespace", "{{ [1,\n 2] }}{% if (1\n + 1) == 2 %}ok{% endif %}", nullptr, "[1, 2]ok"},
    {"whitespace", "{% if true %}\n{% endif %}\n{% if true %}x{% endif %}", nullptr, "x"},
// ---- expressions
    {"expressions", "{{ 'a\\tb\\n\\u00e9\\x41\\\\\\'' }}|{{ \"q\\\"\" }}|{{ 'a' \"b\" 'c' }}|{{ '\\d' }}", nullptr, "a\tb\néA\\'|q\"|abc|\\d"},
    {"expressions", "{{ 42 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1.5 }} {{ 1e3 }} {{ 2.5e-3 }} {{ 1_0.0_1 }}", nullptr, "42 31 15 5 1000 1.5 1000.0 0.0025 10.01"},
    {"expressions", "{{ [1, 'a', none, true, 2.0] }} {{ {'k': [1, {'x': none}]} }} {{ (1, 'a') }} {{ (1,) }} {{ () }} {{ [] }} {{ {} }}", nullptr, "[1, 'a', None, True, 2.0] {'k': [1, {'x': None}]} (1, 'a') (1,) () [] {}"},
    {"expressions", "{{ none }} {{ None }} {{ true }} {{ False }} {{ n }} {{ undefined_name }}|", nullptr, "None None True False None |"},
    {"expressions", "{{ 1 + 2 }} {{ 7 - 10 }} {{ 2 * 3.0 }} {{ 7 / 2 }} {{ 8 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 0.5 }}", nullptr, "3 -3 6.0 3.5 4.0 3 -4 2 -2 1.5 1024 0.5 1.4142135623730951"},
    {"expressions", "{{ 'ab' * 2 }} {{ 3 * 'x' }} {{ [1] * 3 }} {{ [1] + [2] }} {{ 'a' + 'b' }} {{ true + true }} {{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }}", nullptr, "abab xxx [1, 1, 1] [1, 2] ab 2 3 9 4 64"},
    {"expressions", "{{ 'a' ~ 1 ~ none ~ true ~ 1.0 ~ [1] }} {{ 'a' ~ 'b' + 'c' }} {{ undefined_name ~ 'x' }}", nullptr, "a1NoneTrue1.0[1] abc x"},
    {"expressions", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' != 'b' }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }} {{ 2 >= 2 }} {{ 3 <= 2 }}", nullptr, "True False True True True True True False True False"},
    {"expressions", "{{ 'ell' in s }} {{ 2 in xs }} {{ 5 not in xs }} {{ 'a' in d }} {{ 'z' in d }} {{ 'x' in undefined_name }} {{ none in [none] }}", nullptr, "True True True True False False True"},
    {"expressions", "{{ {'a': 1} == {'a': 1} }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }} {{ none == none }} {{ undefined_name == undefined_name }} {{ undefined_name == none }}", nullptr, "True True True True False"},
    {"expressions", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ none or [] }} {{ not 0 }} {{ not 'a' }} {{ not none and 1 }} {{ 1 if 0 else 2 }}", nullptr, "x b  [] True False 1 2"},
    {"expressions", "{{ 'yes' if xs else 'no' }} {{ 'y' if n }}|{{ ('a' if false) is defined }} {{ 1 if false else 2 if false else 3 }}", nullptr, "yes |False 3"},
    {"expressions", "{{ d.a }} {{ d['b'] }} {{ d.zz }}|{{ d['zz'] }}|{{ msgs[0].role }} {{ msgs[-1]['content'] }} {{ msgs[5] }}|{{ xs.1 }}", nullptr, "1 two ||user yo |2"},
    {"expressions", "{{ xs[::-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::2] }} {{ xs[5:] }} {{ xs[-100:1] }} {{ s[1:3] }} {{ s[-3:] }} {{ s[::-1] }} {{ u8[1:4] }} {{ u8[-1] }}", nullptr, "[3, 2, 1] [2, 3] [1, 2] [1, 3] [] [1] el rld dlroW olleH éll 😀"},
    {"expressions", "{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e16 }} {{ 1234567890123456.0 }} {{ 1 / 3 }} {{ -0.0 }} {{ 1.5e-7 }} {{ 0.0001 }} {{ 100.0 }} {{ 2.5 * 4 }} {{ 1e-05 }}", nullptr, "0.30000000000000004 1e+20 1e+16 1234567890123456.0 0.3333333333333333 -0.0 1.5e-07 0.0001 100.0 10.0 1e-05"},
    {"expressions", "{{ ['it\\'s', \"say \\\"hi\\\"\", 'both \\' \"', 'tab\\t', '\\x00', '\\u00a0', 'é', '😀'] }}", nullptr, "[\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\t', '\\x00', '\\xa0', 'é', '😀']"},
    {"expressions", "{{ d }} {{ msgs }} {{ [none, undefined_name] }}", nullptr, "{'a': 1, 'b': 'two', 'items': 5} [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'yo'}] [None, Undefined]"},
    {"expressions", "{{ (xs|length) + 1 }} {{ -(xs|length) }} {{ -(1)|abs }} {{ xs|first + xs|last }}", nullptr, "4 -3 1 4"},
// ---- tests
    {"tests", "{{ x is defined }} {{ d is defined }} {{ x is undefined }} {{ n is none }} {{ n is not none }} {{ 0 is none }}", nullptr, "False True True True False False"},
    {"tests", "{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 's' is number }}", nullptr, "True False True True True False"},
    {"tests", "{{ 1 is integer }} {{ true is integer }} {{ 1.0 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }}", nullptr, "True False False True True False True False True"},
    {"tests", "{{ d is mapping }} {{ xs is mapping }} {{ xs is iterable }} {{ 'ab' is iterable }} {{ d is iterable }} {{ 1 is iterable }} {{ x is iterable }} {{ n is iterable }}", nullptr, "True False True True True False True False"},
    {"tests", "{{ xs is sequence }} {{ 's' is sequence }} {{ d is sequence }} {{ 1 is sequence }} {{ namespace(a=1) is mapping }} {{ range is callable }} {{ s.upper is callable }} {{ 1 is callable }}", nullptr, "True True True False False True True False"},
    {"tests", "{{ 3 is odd }} {{ 3 is even }} {{ 4 is even }} {{ -3 is odd }} {{ 3.5 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}", nullptr, "True False True True False True False"},
    {"tests", "{{ 'a' is equalto 'a' }} {{ 1 is eq 2 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is le 2 }} {{ 3 is gt 2 }} {{ 2 is ge 3 }} {{ 2 is in xs }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 2 }}", nullptr, "True False True True True True False True True True"},
    {"tests", "{{ 'abc' is lower }} {{ 'aBc' is lower }} {{ 'ABC' is upper }} {{ '1' is upper }} {{ none is sameas none }} {{ xs is sameas xs }} {{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }} {{ 'a' is escaped }}", nullptr, "True False True False True True True False True False"},
    {"tests", "{{ not 3 is odd }} {{ (3 is odd) and (4 is even) }} {{ x is defined and x.y }} {{ 2 is not divisibleby 2 }}", nullptr, "False True False False"},
// ---- filters
    {"filters", "{{ '  pad \\n'|trim }}|{{ 'xxaxx'|trim('x') }}|{{ x|trim }}|{{ 5|trim }}|{{ none|trim }}", nullptr, "pad|a||5|None"},
    {"filters", "{{ xs|length }} {{ d|length }} {{ s|length }} {{ u8|length }} {{ x|length }} {{ xs|count }} {{ ''|length }}", nullptr, "3 3 11 13 0 3 0"},
    {"filters", "{{ xs|first }} {{ xs|last }} {{ s|first }} {{ d|first }} {{ []|first }}|{{ x|first }}|{{ 'é😀'|last }}", nullptr, "1 3 H a ||😀"},
    {"filters", "{{ xs|join }} {{ xs|join(', ') }} {{ msgs|join('|', attribute='role') }} {{ [none, true, 1.0]|join('-') }} {{ x|join(',') }}|", nullptr, "123 1, 2, 3 user|assistant None-True-1.0 |"},
    {"filters", "{{ s|upper }} {{ s|lower }} {{ 'hELLO wORLD'|capitalize }} {{ 'hello-world foo_bar (x) [y]'|title }} {{ u8|upper }} {{ 'ÉCOLE'|lower }}", nullptr, "HELLO WORLD hello world Hello world Hello-World Foo_bar (X) [Y] HÉLLO WÖRLD 😀 école"},
    {"filters", "{{ s|replace('o', '0') }} {{ s|replace('o', '0', 1) }} {{ 'aaa'|replace('', '-') }} {{ 123|replace('2', 'x') }}", nullptr, "Hell0 W0rld Hell0 World -a-a-a- 1x3"},
    {"filters", "{{ x|default('D') }} {{ x|d('D') }} {{ ''|default('E') }}|{{ ''|default('E', true) }} {{ none|default('N') }} {{ none|default('N', boolean=true) }} {{ 0|d(1, true) }} {{ x|default }}|", nullptr, "D D |E None N 1 |"},
    {"filters", "{{ 'ab'|list }} {{ d|list }} {{ xs|list }} {{ x|list }} {{ (1, 2)|list }}", nullptr, "['a', 'b'] ['a', 'b', 'items'] [1, 2, 3] [] [1, 2]"},
    {"filters", "{{ 1|string }} {{ none|string }} {{ xs|string }} {{ 1.0|string }} {{ x|string }}|{{ true|string ~ '!' }}", nullptr, "1 None [1, 2, 3] 1.0 |True!"},
    {"filters", "{{ '42'|int }} {{ ' 7 '|int }} {{ '3.9'|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ 3.99|int }} {{ -3.99|int }} {{ '0x1A'|int(0, 16) }} {{ '101'|int(base=2) }} {{ true|int }} {{ '1_000'|int }}", nullptr, "42 7 3 0 -1 3 -3 26 5 1 1000"},
    {"filters", "{{ '3.5'|float }} {{ '1e3'|float }} {{ 'x'|float }} {{ 'x'|float(1.5) }} {{ 2|float }} {{ ' -0.5 '|float }} {{ 'inf'|float }}", nullptr, "3.5 1000.0 0.0 1.5 2.0 -0.5 inf"},
    {"filters", "{{ -3|abs }} {{ -2.5|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.345|round(1, 'floor') }} {{ 2.31|round(1, 'ceil') }} {{ 7|round }} {{ 0.125|round(2) }}", nullptr, "3 2.5 2.57 2.0 4.0 2.3 2.4 7 0.12"},
    {"filters", "{{ d|items|list }} {{ x|items|list }} {% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}", nullptr, "[('a', 1), ('b', 'two'), ('items', 5)] [] a=1;b=two;items=5;"},
    {"filters", "{{ msgs|map(attribute='role')|list }} {{ xs|map('string')|join }} {{ ['a', 'b']|map('upper')|list }} {{ msgs|map(attribute='missing', default='?')|list }} {{ [[1, 2], [3]]|map('length')|list }} {{ ['x y', 'z']|map('replace', ' ', '_')|list }}", nullptr, "['user', 'assistant'] 123 ['A', 'B'] ['?', '?'] [2, 1] ['x_y', 'z']"},
    {"filters", "{{ xs|select('odd')|list }} {{ xs|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ xs|select('divisibleby', 3)|list }} {{ xs|select('in', [2, 3])|list }} {{ [1, 5, 9]|select('>', 4)|list }}", nullptr, "[1, 3] [2] [1, 'a'] [3] [2, 3] [5, 9]"},
    {"filters", "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ msgs|rejectattr('role', 'eq', 'user')|list }} {{ [{'a': 1}, {'a': 0}, {}]|selectattr('a')|list }} {{ [{'a': {'b': 2}}]|selectattr('a.b', '==', 2)|list }}", nullptr, "['hi'] [{'role': 'assistant', 'content': 'yo'}] [{'a': 1}] [{'a': {'b': 2}}]"},
    {"filters", "{{ words|unique|list }} {{ words|unique(case_sensitive=true)|list }} {{ [1, 1.0, true, 2]|unique|list }} {{ msgs|unique(attribute='role')|list|length }}", nullptr, "['b', 'A', 'C'] ['b', 'A', 'a', 'C'] [1, 2] 2"},
    {"filters", "{{ xs|reverse|list }} {{ 'abc'|reverse }} {{ d|reverse|list }} {{ u8|reverse }}", nullptr, "[3, 2, 1] cba ['items', 'b', 'a'] 😀 dlröw olléh"},
    {"filters", "{{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ words|sort(reverse=true) }} {{ [3, 1.5, 2]|sort }} {{ msgs|sort(attribute='role', reverse=true)|map(attribute='role')|list }}", nullptr, "['A', 'a', 'b', 'C'] ['A', 'C', 'a', 'b'] ['C', 'b', 'A', 'a'] [1.5, 2, 3] ['user', 'assistant']"},
    {"filters", "{{ d|dictsort }} {{ {'b': 1, 'A': 2, 'a': 3}|dictsort }} {{ {'b': 1, 'A': 2}|dictsort(true) }} {{ {'x': 2, 'y': 1}|dictsort(by='value') }} {{ {'x': 2, 'y': 1}|dictsort(reverse=true) }}", nullptr, "[('a', 1), ('b', 'two'), ('items', 5)] [('A', 2), ('a', 3), ('b', 1)] [('A', 2), ('b', 1)] [('y', 1), ('x', 2)] [('y', 1), ('x', 2)]"},
    {"filters", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'a\\nb'|indent('> ') }}|{{ 'x'|indent(first=true) }}|{{ 'a\\n'|indent(1) }}|", nullptr, "a\n    b\n\n    c|  a\n  b|a\n  \n  b|a\n> b|    x|a\n|"},
    {"filters", "{{ '<a href=\"x\">&\\'</a>'|e }} {{ '<b>'|escape }} {{ '<i>'|safe }} {{ 5|e }}", nullptr, "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; &lt;b&gt; <i> 5"},
    {"filters", "{{ xs|sum }} {{ [1.5, 2]|sum }} {{ msgs|map(attribute='content')|map('length')|sum }} {{ [{'v': 2}, {'v': 3}]|sum(attribute='v', start=10) }} {{ xs|min }} {{ xs|max }} {{ words|min }} {{ words|max(case_sensitive=true) }} {{ []|max }}|", nullptr, "6 3.5 4 15 1 3 A b |"},
    {"filters", "{{ 'hello world foo'|wordcount }} {{ 'x'|center(7) }}|{{ 'ab'|center(5) }}| {{ 'a long sentence here'|truncate(9) }} {{ 'a long sentence here'|truncate(9, true) }} {{ 'short'|truncate(9) }} {{ 'a long sentence here'|truncate(12, false, '..', 0) }}", nullptr, "3    x   |  ab | a... a long... short a long.."},
    {"filters", "{{ '%s-%05.1f-%d-%x'|format('a', 3.14159, 7, 255) }} {{ '%(a)s/%(b)s'|format(a=1, b=2) }} {{ '%s' % 'x' }} {{ '%s %s' % (1, none) }} {{ '%-4s|%4s|' % ('a', 'b') }} {{ '100%%' % () }}", nullptr, "a-003.1-7-ff 1/2 x 1 None a   |   b| 100%"},
    {"filters", "{{ xs|batch(2)|list }} {{ xs|batch(2, 0)|list }} {{ [1, 2, 1]|groupby('real')|length if false else msgs|groupby('role')|map(attribute='0')|list }} {{ xs|attr('count') is callable }}", nullptr, "[[1, 2], [3]] [[1, 2], [3, 0]] ['assistant', 'user'] True"},
// ---- tojson
    {"tojson", "{{ d|tojson }}|{{ xs|tojson }}|{{ 'é\"\\\\\\n\\t\\x01'|tojson }}|{{ none|tojson }} {{ true|tojson }} {{ 1.0|tojson }} {{ 1e-05|tojson }} {{ 100.0|tojson }} {{ (1, 2)|tojson }}", nullptr, "{\"a\": 1, \"b\": \"two\", \"items\": 5}|[1, 2, 3]|\"é\\\"\\\\\\n\\t\\u0001\"|null true 1.0 1e-05 100.0 [1, 2]"},
    {"tojson", "{{ {'a': [1, {'b': []}], 'c': {}}|tojson(indent=2) }}|{{ [1, [2, 3]]|tojson(indent=0) }}|{{ {'a': 1}|tojson(indent='\\t') }}", nullptr, "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ],\n  \"c\": {}\n}|[\n1,\n[\n2,\n3\n]\n]|{\n\t\"a\": 1\n}"},
    {"tojson", "{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ {'a': [1, 2]}|tojson(separators=(',', ':')) }} {{ 'é😀'|tojson(ensure_ascii=true) }} {{ {'k': 'v'}|tojson(true) }} {{ {1: 'x', none: 'y', true: 'z'}|tojson }}", nullptr, "{\"a\": 2, \"b\": 1} {\"a\":[1,2]} \"\\u00e9\\ud83d\\ude00\" {\"k\": \"v\"} {\"1\": \"z\", \"null\": \"y\"}"},
    {"tojson", "{{ u8|tojson }} {{ {'z': 1, 'a': 2, 'm': {'y': 1, 'b': 2}}|tojson }}", nullptr, "\"héllo wörld 😀\" {\"z\": 1, \"a\": 2, \"m\": {\"y\": 1, \"b\": 2}}"},
// ---- methods
    {"methods", "{{ s.startswith('He') }} {{ s.startswith(('x', 'Hel')) }} {{ s.endswith('ld') }} {{ s.startswith('o', 4) }} {{ s.endswith('Hell', 0, 4) }}", nullptr, "True True True True True"},
    {"methods", "{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nab\\n'.lstrip('\\n') }}|{{ 'ab\\n\\n'.rstrip('\\n') }}|{{ '  x '.lstrip() }}|{{ ' x  '.rstrip() }}|{{ 'abcba'.strip('ab') }}", nullptr, "x|a|ab\n|ab|x | x|c"},
    {"methods", "{{ s.split() }} {{ ' a  b '.split() }} {{ 'a,b,,c'.split(',') }} {{ s.split('o', 1) }} {{ s.rsplit('o', 1) }} {{ 'a b c'.rsplit(None, 1) }} {{ 'a b c'.split(maxsplit=1) }} {{ ''.split() }} {{ ''.split(',') }}", nullptr, "['Hello', 'World'] ['a', 'b'] ['a', 'b', '', 'c'] ['Hell', ' World'] ['Hello W', 'rld'] ['a b', 'c'] ['a', 'b c'] [] ['']"},
    {"methods", "{{ '<think>x</think>\\n\\ny'.split('</think>')[-1].lstrip('\\n') }}|{{ '<think>\\nr\\n</think>y'.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}", nullptr, "y|r"},
    {"methods", "{{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 2) }} {{ s.find('o') }} {{ s.find('z') }} {{ s.rfind('o') }} {{ u8.find('w') }} {{ s.count('l') }} {{ s.index('W') }} {{ s.upper() }} {{ s.lower() }} {{ 'hello world'.title() }} {{ 'they\\'re 3rd'.title() }} {{ 'hELLO'.capitalize() }}", nullptr, "HeLLo WorLd HeLLo World 4 -1 7 6 3 6 HELLO WORLD hello world Hello World They'Re 3Rd Hello"},
    {"methods", "{{ '{} and {}'.format(1, 'b') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='x') }} {{ '{:>5}|{:<4}|{:^6}|{:05d}|{:.2f}|{:,}'.format('r', 'l', 'c', 42, 3.14159, 1234567) }} {{ '{{literal}}'.format() }} {{ '{0[a]}'.format({'a': 5}) }} {{ '{!r}'.format('q') }}", nullptr, "1 and b aba x!     r|l   |  c   |00042|3.14|1,234,567 {literal} 5 'q'"},
    {"methods", "{{ ', '.join(['a', 'b']) }} {{ ''.join(s|list|reverse) }} {{ 'ab12'.isalnum() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' \\t'.isspace() }} {{ 'AB'.isupper() }} {{ 'ab'.islower() }} {{ 'x'.zfill(3) }} {{ '-5'.zfill(4) }} {{ 'ab'.center(6, '*') }} {{ 'ab'.ljust(4, '.') }} {{ 'ab'.rjust(4) }}", nullptr, "a, b dlroW olleH True True True True True True 00x -005 **ab** ab..   ab"},
    {"methods", "{{ 'prefix_x'.removeprefix('prefix_') }} {{ 'x.txt'.removesuffix('.txt') }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'aBc'.swapcase() }}", nullptr, "x x ('a', '=', 'b=c') ('a=b', '=', 'c') ['a', 'b', 'c'] AbC"},
    {"methods", "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d['items'] }} {{ d.items is callable }} {{ xs.index(2) }} {{ xs.count(3) }}", nullptr, "1 None dflt ['a', 'b', 'items'] [1, 'two', 5] [('a', 1), ('b', 'two'), ('items', 5)] 5 True 1 1"},
    {"methods", "{% for k, v in d.items() %}{{ k }}:{{ v }},{% endfor %} {% for m in msgs %}{{ m.get('role') }}{% endfor %}", nullptr, "a:1,b:two,items:5, userassistant"},
// ---- statements
    {"statements", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", nullptr, "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|"},
    {"statements", "{% for x in xs %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }};{% endfor %} {% for x in xs %}{{ loop.cycle('a', 'b') }}{% endfor %} {% for x in xs %}{{ loop.depth }}{% endfor %}", nullptr, "<1>2;1<2>3;2<3>; aba 111"},
    {"statements", "{% for x in xs if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}|{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in xs if x > 5 %}a{% else %}none{% endfor %}", nullptr, "2:1/2 3:2/2 |empty|none"},
    {"statements", "{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }} {% endfor %}{% for k in d %}{{ k }}{% endfor %} {% for c in 'ab' %}{{ c }}.{% endfor %} {% for x in undefined_name %}no{% else %}undefined iterates as empty{% endfor %}", nullptr, "3 7 abitems a.b. undefined iterates as empty"},
    {"statements", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %} {% for x in xs %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %} {% for x in xs %}{% for y in xs %}{% if y > x %}{% break %}{% endif %}{{ x }}{{ y }} {% endfor %}{% endfor %}", nullptr, "13 1 11 21 22 31 32 33 "},
    {"statements", "{% for row in [[1, 2], [3]] %}{% for v in row %}{{ loop.index }}/{{ loop.length }} {% endfor %}{{ loop.index }}|{% endfor %}", nullptr, "1/2 2/2 1|1/1 2|"},
    {"statements", "{% set x = 0 %}{% for i in xs %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}", nullptr, "0101010"},
    {"statements", "{% for i in range(3) %}{% if i == 1 %}{% set y = 5 %}{% endif %}{{ y }}{% endfor %}|{{ y }}|{% set z = 1 %}{% if true %}{% set z = 2 %}{% endif %}{{ z }}", nullptr, "5||2"},
    {"statements", "{% set ns = namespace(count=0, found=false) %}{% for x in xs %}{% set ns.count = ns.count + x %}{% if x == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns.missing }}|{{ ns }}", nullptr, "6 True |<Namespace {'count': 6, 'found': True}>"},
    {"statements", "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }} {% set l = [1, 2] %}{% set p, q = l %}{{ q }}{{ p }}", nullptr, "12 (1, 2) 21"},
    {"statements", "{% set block %}inner {{ 1 + 1 }}\n{% endset %}[{{ block }}]{% set up | upper %}shout{% endset %}{{ up }}{% set tr | trim | upper %}  x  {% endset %}[{{ tr }}]", nullptr, "[inner 2\n]SHOUT[X]"},
    {"statements", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }} {{ greet() }}|", nullptr, "Hi A! Hi B? Hi C. Hi !|"},
    {"statements", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }} {% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}body {{ xs|length }}{% endcall %} {% macro lst(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(v) lst(xs) %}<{{ v }}>{% endcall %}", nullptr, "1(2, 3){'k': 4} [body 3] <1><2><3>"},
    {"statements", "{% set g = 'global' %}{% macro show() %}{{ g }}{% endmacro %}{% for i in [1] %}{% set g = 'loop' %}{{ show() }}{% endfor %}", nullptr, "global"},
    {"statements", "{% filter upper %}shout {{ 'this' }}{% endfilter %} {% filter replace('a', 'o') | upper %}banana{% endfilter %}", nullptr, "SHOUT THIS BONONO"},
    {"statements", "{% with a = 1, b = 2 %}{{ a + b }}{% set c = 3 %}{% endwith %}{{ a }}|{{ c }}| {% with %}{% set w = 1 %}{{ w }}{% endwith %}", nullptr, "3|| 1"},
    {"statements", "{% for m in msgs %}{% generation %}<{{ m.content }}>{% endgeneration %}{% endfor %}", nullptr, "<hi><yo>"},
    {"statements", "{% print 1 + 1, 'x' %} {% if xs %}a{% elif d %}b{% else %}c{% endif %} {% if not xs %}a{% elif d %}b{% else %}c{% endif %} {% if false %}a{% elif false %}b{% else %}c{% endif %}", nullptr, "2x a b c"},
    {"statements", "{% if xs: %}colon{% endif %} {% for x in xs: %}{{ x }}{% endfor %}", nullptr, "colon 123"},
// ---- globals
    {"globals", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }} {% for i in range(2) %}{{ i }}{% endfor %}", nullptr, "[0, 1, 2] [1, 2, 3] [10, 7, 4, 1] [] 01"},
    {"globals", "{{ dict(a=1, b=2) }} {{ dict(a=1).a }} {{ namespace(x=1).x }} {{ namespace({'y': 2}).y }} {% set j = joiner(' | ') %}{% for x in xs %}{{ j() }}{{ x }}{% endfor %}", nullptr, "{'a': 1, 'b': 2} 1 1 2 1 | 2 | 3"},
    {"globals", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S %A %j') }} {{ strftime_now('') }}|", nullptr, "05 Sep 2024 2024-09-05 14:30:00 Thursday 249 |"},
    {"globals", "{{ msgs[0].content }} {{ messages is defined }} {{ raise_exception is callable }}", nullptr, "hi False True"},
// ---- generators
    {"generators", "{% if xs|select('>', 10) %}truthy{% endif %}|{% if xs|select('>', 10)|list %}x{% else %}empty list{% endif %}", nullptr, "truthy|empty list"},
    {"generators", "{% set g = xs|select('odd') %}{{ g|list }}{{ g|list }}|{{ g is iterable }} {{ g is sequence }} {{ g is defined }}", nullptr, "[1, 3][]|True False True"},
    {"generators", "{{ 5|select('odd') is defined }}|{{ 5|map('string') is iterable }}|{{ xs|reverse is sequence }} {{ xs|reverse|list }} {{ d|reverse|list }}", nullptr, "True|True|False [3, 2, 1] ['items', 'b', 'a']"},
    {"generators", "{{ '%s' % xs }} {{ '{}' % x }}|{{ 'a%sb' % x }} {{ d.keys() }} {{ d.items()|length }} {{ d.values() is sequence }} {{ d.items() }}", nullptr, "[1, 2, 3] {}|ab dict_keys(['a', 'b', 'items']) 3 False dict_items([('a', 1), ('b', 'two'), ('items', 5)])"},
    {"generators", "{% for k, v in d|items %}{{ k }}{% endfor %} {% for b in xs|batch(2) %}{{ b }}{% endfor %} {{ xs|unique|list }} {{ 'x' in xs|map('string') }}", nullptr, "abitems [1, 2][3] [1, 2, 3] False"},
};

// The error jinja2 raises for `source` must be reported with its type and the template line.
void check_error(const std::string& source, const std::string& type_and_message, int line) {
  INFO("template: " << source);
  std::string message;
  try {
    render(source);
  } catch (const slime::Error& e) {
    message = e.what();
  }
  REQUIRE_FALSE(message.empty());
  CHECK_THAT(message, Catch::Contains(type_and_message));
  CHECK_THAT(message, Catch::StartsWith("test.jinja line " + std::to_string(line) + ":"));
}

}  // namespace

TEST_CASE("templates render as jinja2 renders them", "[jinja]") {
  for (const RenderCase& c : kRenderCases) {
    INFO("[" << c.group << "] " << c.source);
    CHECK(render(c.source, c.context) == c.expected);
  }
}

TEST_CASE("syntax errors name the line and what was expected", "[jinja]") {
  check_error("{% if x %}\nabc", "Unexpected end of template. Jinja was looking for the following tags: 'elif' or "
                                 "'else' or 'endif'. The innermost block that needs to be closed is 'if'.", 2);
  check_error("line1\n{{ x|nosuch }}", "No filter named 'nosuch'.", 2);
  check_error("{% foo %}", "Encountered unknown tag 'foo'.", 1);
  check_error("\n{{ 1 + }}", "unexpected 'end of print statement'", 2);
  check_error("{# unclosed", "Missing end of comment tag", 1);
  check_error("{{ 'abc }}", "unexpected char \"'\" at 3", 1);
  check_error("{% for x in xs %}{% endif %}", "Encountered unknown tag 'endif'. Jinja was looking for the following "
                                              "tags: 'endfor' or 'else'. The innermost block that needs to be closed "
                                              "is 'for'.", 1);
  check_error("{% raw %}abc", "Missing end of raw directive", 1);
  check_error("{{ (1 }}", "unexpected '}', expected ')'", 1);
  check_error("{% include 'x' %}", "not supported", 1);
  check_error("{% set 1 = 2 %}", "can't assign", 1);
  // Parse errors are raised when the template is built, before any rendering.
  CHECK_THROWS_WITH(Template("a\n\n{% endif %}", "t.jinja"), Catch::StartsWith("t.jinja line 3: syntax error:"));
}

TEST_CASE("runtime errors carry jinja2's error type, message and the line", "[jinja]") {
  check_error("a\nb\n{{ foo.bar }}", "UndefinedError: 'foo' is undefined", 3);
  check_error("{{ d.zz.y }}", "UndefinedError: 'dict object' has no attribute 'zz'", 1);
  check_error("{{ x.y is defined }}", "UndefinedError: 'x' is undefined", 1);
  check_error("{{ s.nosuch() }}", "'str object' has no attribute 'nosuch'", 1);
  check_error("{{ x + 1 }}", "UndefinedError: 'x' is undefined", 1);
  check_error("{{ x|int }}", "UndefinedError: 'x' is undefined", 1);
  check_error("{{ xs.append(4) }}", "access to attribute 'append' of 'list' object is unsafe.", 1);
  check_error("{{ 1 / 0 }}", "ZeroDivisionError: division by zero", 1);
  check_error("{{ 'a' + 1 }}", "TypeError: can only concatenate str (not \"int\") to str", 1);
  check_error("{{ 1 + 2 ~ 3 }}", "TypeError: unsupported operand type(s) for +: 'int' and 'str'", 1);
  check_error("{{ -xs|length }}", "TypeError: bad operand type for unary -: 'list'", 1);
  check_error("{{ 1 < 'a' }}", "TypeError: '<' not supported between instances of 'int' and 'str'", 1);
  check_error("x\n{{ raise_exception('custom msg') }}", "custom msg", 2);
  check_error("{% for x in none %}{% endfor %}", "TypeError: 'NoneType' object is not iterable", 1);
  check_error("\n\n{{ 'x' in none }}", "TypeError: argument of type 'NoneType' is not iterable", 3);
  check_error("{{ x|tojson }}", "TypeError: Object of type Undefined is not JSON serializable", 1);
  check_error("{% set ns = 1 %}{% set ns.x = 2 %}", "cannot assign attribute on non-namespace object", 1);
  check_error("{{ ['a']|sum(start='') }}", "TypeError: sum() can't sum strings", 1);
  check_error("{{ range(200000)|length }}", "OverflowError: Range too big.", 1);
  check_error("{% for a, b in [(1, 2, 3)] %}{% endfor %}", "ValueError: too many values to unpack (expected 2)", 1);
  check_error("{{ 5() }}", "TypeError: 'int' object is not callable", 1);
  check_error("{{ 'a'|join(nope=1) }}", "unexpected keyword argument 'nope'", 1);
  check_error("{{ ''.split('') }}", "ValueError: empty separator", 1);
  check_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}", "RecursionError", 1);
  check_error("{{ xs|items|list }}", "TypeError: Can only get item pairs from a mapping.", 1);
  // Generators fail when iterated, not when made; they have no len().
  check_error("{{ 5|select('odd')|list }}", "TypeError: 'int' object is not iterable", 1);
  check_error("{{ xs|select('odd')|length }}", "TypeError: object of type 'generator' has no len()", 1);
  check_error("{{ xs|map('string')|last }}", "TypeError: 'generator' object is not reversible", 1);
  // In an if statement (test and direct body) and an inline if, an unknown test or filter fails only when it is
  // evaluated (jinja2's soft frames); a loop inside the if is an ordinary frame again, checked when parsing.
  check_error("a\n{% if x is nosuch %}{% endif %}", "No test named 'nosuch' found.", 2);
  check_error("{% if true %}{{ 1|nosuch }}{% endif %}", "No filter named 'nosuch' found.", 1);
  CHECK(render("{% if false and x is nosuch %}y{% else %}n{% endif %}") == "n");
  CHECK(render("{% if false %}{{ x|nosuch }}{% endif %}ok") == "ok");
  CHECK(render("{% if false %}{% set y = 1|nosuch %}{% endif %}ok") == "ok");
  CHECK(render("{% for i in xs %}{{ i|nosuch if false else i }}{% endfor %}") == "123");
  CHECK_THROWS_WITH(Template("{% if false %}{% for i in xs %}{{ i|nosuch }}{% endfor %}{% endif %}"),
                    Catch::Contains("No filter named 'nosuch'."));
  // The line of the failing expression inside a multi-line statement, not of the statement.
  check_error("{{ [1,\n 2,\n foo.bar] }}", "'foo' is undefined", 3);
}

TEST_CASE("strftime_now reads the pinned clock, or the local time", "[jinja]") {
  CHECK(render("{{ strftime_now('%d %b %Y') }}") == "05 Sep 2024");
  std::string now = Template("{{ strftime_now('%Y') }}").render(slime::json::object());
  CHECK(now.size() == 4);
  CHECK(std::stoi(now) >= 2024);
}

TEST_CASE("contexts: sorted and ordered JSON, and non-object contexts", "[jinja]") {
  Template t("{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %} {{ d|tojson }}");
  const char* doc = R"({"d": {"b": 1, "a": 2}})";
  CHECK(t.render(ordered_json::parse(doc)) == "b1a2 {\"b\": 1, \"a\": 2}");  // the document's order, as Python
  CHECK(t.render(slime::json::parse(doc)) == "a2b1 {\"a\": 2, \"b\": 1}");    // nlohmann::json sorts keys
  CHECK_THROWS_WITH(t.render(slime::json::array()), Catch::Contains("must be a JSON object"));
  // Big and small JSON numbers keep their type: ints print without ".0", floats with it.
  CHECK(Template("{{ a }} {{ b }} {{ c }} {{ a is integer }}").render(slime::json::parse(R"({"a": 3, "b": 3.0, "c": 1e300})")) ==
        "3 3.0 1e+300 True");
}

TEST_CASE("a template renders many times with independent state", "[jinja]") {
  Template t("{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}");
  CHECK(t.render(ordered_json::parse(R"({"xs": [1, 2]})")) == "3");
  CHECK(t.render(ordered_json::parse(R"({"xs": [5]})")) == "5");
}

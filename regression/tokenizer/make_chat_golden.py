#!/usr/bin/env python3
"""Renders every conversation of chat_cases.json with every chat template listed there and writes chat_golden.json.

Default mode builds the Jinja environment exactly as transformers' chat_template_utils does
(ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks, loopcontrols + the {% generation %} tag), the json.dumps
`tojson` filter and the raise_exception / strftime_now globals), so only jinja2 is needed.
`--transformers` renders through transformers' own PreTrainedTokenizerFast.apply_chat_template instead (needs the
transformers and tokenizers packages) and, with `--check`, only compares against the committed golden file.

strftime_now is pinned to chat_cases.json's `fixed_now` so the renders do not depend on the day they are made.
Variables passed to a template, as in transformers' apply_chat_template: messages, tools (or None), documents (None),
add_generation_prompt, the tokenizer's special tokens (bos_token, eos_token, ... only those set), then the case's kwargs.
Usage: regression/tokenizer/make_chat_golden.py [--transformers] [--check]
"""
import argparse
import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_cases():
    with open(os.path.join(HERE, "chat_cases.json"), encoding="utf-8") as f:
        return json.load(f)


def make_jinja_renderer(fixed_now):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(jinja2.ext.Extension):
        # transformers' AssistantTracker without the index tracking: {% generation %}body{% endgeneration %} -> body
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

        def _render_body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return fixed_now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(source, special_tokens, case):
        template = env.from_string(source)
        variables = dict(messages=case["messages"], tools=case.get("tools"), documents=None,
                         add_generation_prompt=case["add_generation_prompt"])
        variables.update(special_tokens)
        variables.update(case.get("kwargs", {}))
        return template.render(**variables)

    return render, "jinja2 " + jinja2.__version__


def make_transformers_renderer(fixed_now):
    try:
        import transformers
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from transformers import PreTrainedTokenizerFast
    except ImportError as e:
        sys.exit(f"make_chat_golden.py --transformers needs the transformers and tokenizers packages: {e}")

    def strftime_now(fmt):
        return fixed_now.strftime(fmt)

    def render(source, special_tokens, case):
        backend = Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=source, **special_tokens)
        kwargs = dict(case.get("kwargs", {}))
        # A render variable named strftime_now shadows the global of the same name: pins the clock.
        kwargs["strftime_now"] = strftime_now
        return tokenizer.apply_chat_template(case["messages"], tools=case.get("tools"), tokenize=False,
                                             add_generation_prompt=case["add_generation_prompt"], **kwargs)

    return render, "transformers " + transformers.__version__


def render_all(render, doc):
    results = {}
    for template_name, spec in doc["templates"].items():
        with open(os.path.join(HERE, spec["file"]), encoding="utf-8") as f:
            source = f.read()
        per_case = {}
        for case in doc["cases"]:
            try:
                per_case[case["name"]] = {"output": render(source, spec["special_tokens"], case)}
            except Exception as e:  # the expected result of that case is this error
                per_case[case["name"]] = {"error_type": type(e).__name__, "error": str(e)}
        results[template_name] = per_case
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transformers", action="store_true",
                        help="render with transformers' apply_chat_template instead of a replica of its environment")
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed chat_golden.json instead of writing it")
    args = parser.parse_args()

    doc = load_cases()
    fixed_now = datetime.datetime.fromisoformat(doc["fixed_now"])
    maker = make_transformers_renderer if args.transformers else make_jinja_renderer
    render, generator = maker(fixed_now)
    results = render_all(render, doc)
    golden_path = os.path.join(HERE, "chat_golden.json")

    if args.check:
        with open(golden_path, encoding="utf-8") as f:
            golden = json.load(f)["results"]
        mismatches = 0
        for template_name, per_case in results.items():
            for case_name, got in per_case.items():
                want = golden.get(template_name, {}).get(case_name)
                same = want == got or ("error" in got and want is not None and "error" in want)
                if not same:
                    mismatches += 1
                    print(f"MISMATCH {template_name}/{case_name}:\n  golden: {want!r}\n  {generator}: {got!r}")
        total = sum(len(v) for v in results.values())
        print(f"{total - mismatches} passed, {mismatches} failed")
        return 1 if mismatches else 0

    out = {
        "description": "Expected chat-template renders of chat_cases.json, written by make_chat_golden.py. "
                       "Each entry is {output} or, where rendering raises, {error_type, error}.",
        "generator": generator,
        "fixed_now": doc["fixed_now"],
        "results": results,
    }
    with open(golden_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for v in results.values() for r in v.values() if "error" in r)
    print(f"wrote {golden_path}: {sum(len(v) for v in results.values())} renders ({errors} expected errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""No code path evaluates user input: no eval/exec/compile, no unpickling, no shell, no unsafe YAML
in the job's code (pipelines/, transforms/, templates/). Decision rules are parsed with `ast` and
walked against a whitelist (transforms/matching/rules.py), never compiled."""
import ast
from pathlib import Path

import pytest

from transforms.matching.rules import Rule

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("marshal", "loads"), ("marshal", "load"),
                   ("os", "system"), ("os", "popen"), ("yaml", "load"), ("dill", "loads"), ("cloudpickle", "loads")}


def offences(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(f"{filename}:{node.lineno} {func.id}()")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                (func.value.id, func.attr) in FORBIDDEN_ATTRS:
            found.append(f"{filename}:{node.lineno} {func.value.id}.{func.attr}()")
        if isinstance(func, ast.Attribute) and func.attr in {"run", "Popen", "call", "check_call", "check_output"} \
                and any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                        for k in node.keywords):
            found.append(f"{filename}:{node.lineno} subprocess with shell=")
    return found


def test_the_scanner_catches_each_kind():
    bad = "eval(x)\nimport pickle\npickle.loads(b)\nimport os\nos.system(c)\nimport subprocess\nsubprocess.run(c, shell=True)\n"
    assert len(offences(bad, "bad.py")) == 4
    assert offences("subprocess.run(['ls'], shell=False)\nre.compile('x')\n", "ok.py") == []


def test_job_code_never_evaluates_input():
    files = [p for d in ("pipelines", "transforms", "templates") for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 25
    found = [o for p in files for o in offences(p.read_text(encoding="utf-8"), str(p.relative_to(REPO)))]
    assert not found, found


@pytest.mark.parametrize("text", ["__import__('os').system('id')", "cosine.__class__", "[c for c in ()]",
                                  "cosine >= 0.9 and open('x')", "lambda: 1", "cosine if 1 else 2"])
def test_rule_expressions_outside_the_whitelist_are_refused(text):
    with pytest.raises(ValueError):
        Rule(text)

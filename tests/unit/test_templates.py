"""The decorator templates, expanded the way Azure Pipelines expands them, for jobs of each kind.

A decorator runs in every job of every pipeline of an organization, so its logic is tested as
behaviour, not as text: a small evaluator for the part of the expression language the
templates use (`and`, `or`, `not`, `eq`, `ne`, `containsValue`, `always`, `succeeded`,
`variables['…']`, `job.steps.*.task.id`) expands each template for a job and says which steps
would be injected, and evaluates their runtime `condition`. Drop the opt-out, the GUID check,
`continueOnError` or `always()` from a template and a test here fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "vss-extension.json").read_text())
TASK = json.loads((ROOT / "task" / "task.json").read_text())
GUID = TASK["id"]
OPT_OUT = "ContainerMapping.Disabled"
DECORATOR = "ms.azure-pipelines.pipeline-decorator"
TARGETS = {
    "ms.azure-pipelines-agent-job.pre-job-tasks": "pre-job",
    "ms.azure-pipelines-agent-job.post-job-tasks": "post-job",
    "ms.azure-release-pipelines-agent-job.pre-job-tasks": "pre-job",
    "ms.azure-release-pipelines-agent-job.post-job-tasks": "post-job",
}
OTHER_TASK = "d9bafed4-0b18-4f58-968d-86655b4d2ce9"  # CmdLine, what `script:` resolves to


# --- a small evaluator for Azure Pipelines expressions --------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][\w.-]*)
    | (?P<punct>[(),\[\]*.])
    )""",
    re.X,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        assert match, f"cannot read the expression at {text[pos:]!r}"
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.pos]
        assert value is None or token[1] == value, f"expected {value!r}, got {token[1]!r}"
        self.pos += 1
        return token

    def parse(self) -> Any:
        node = self.expression()
        assert self.peek() is None, f"trailing {self.tokens[self.pos :]}"
        return node

    def expression(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return ("lit", value[1:-1].replace("''", "'"))
        if kind == "num":
            return ("lit", value)
        assert kind == "name", f"unexpected {value!r}"
        if self.peek() == ("punct", "("):
            self.take("(")
            args = []
            while self.peek() != ("punct", ")"):
                args.append(self.expression())
                if self.peek() == ("punct", ","):
                    self.take(",")
            self.take(")")
            return ("call", value, args)
        return self.path(value)

    def path(self, head: str) -> Any:
        # `job.steps.*.task.id` reads as one name token up to the `*`; split it back.
        parts: list[str] = head.split(".")
        while self.peek() in (("punct", "["), ("punct", "."), ("punct", "*")):
            _, punct = self.take()
            if punct == "[":
                parts.append(self.expression()[1])
                self.take("]")
            elif punct == "*":
                parts.append("*")
            else:
                _, name = self.take()
                parts.extend(name.split("."))
        return ("path", [p for p in parts if p])


def _lookup(value: Any, parts: list[str]) -> Any:
    for index, part in enumerate(parts):
        if part == "*":
            items = value if isinstance(value, list) else []
            found = [_lookup(item, parts[index + 1 :]) for item in items]
            return [item for item in found if item is not None]
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _same(left: Any, right: Any) -> bool:
    # Azure Pipelines compares strings ordinally, ignoring case; null equals nothing but null.
    if left is None or right is None:
        return left is right
    return str(left).lower() == str(right).lower()


def evaluate(text: str, context: dict[str, Any]) -> Any:
    def run(node: Any) -> Any:
        if node[0] == "lit":
            return node[1]
        if node[0] == "path":
            return _lookup(context, node[1])
        _, name, args = node
        if name == "and":
            return all(run(arg) for arg in args)
        if name == "or":
            return any(run(arg) for arg in args)
        if name == "not":
            return not run(args[0])
        if name == "eq":
            return _same(run(args[0]), run(args[1]))
        if name == "ne":
            return not _same(run(args[0]), run(args[1]))
        if name == "containsValue":
            haystack, needle = run(args[0]), run(args[1])
            return any(_same(item, needle) for item in (haystack or []))
        if name in ("always", "succeeded", "failed", "canceled"):
            return {"always": True}.get(name, context["jobStatus"] == name)
        raise AssertionError(f"the test evaluator does not know {name}()")

    return run(_Parser(text).parse())


_IF = re.compile(r"^\$\{\{\s*if\s+(?P<cond>.*)\s*\}\}$", re.S)


def expand(steps: list[Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps a template contributes for one job: `${{ if }}` blocks resolved."""
    out: list[dict[str, Any]] = []
    for item in steps:
        keys = list(item) if isinstance(item, dict) else []
        if len(keys) == 1 and keys[0].startswith("${{"):
            match = _IF.match(keys[0].strip())
            assert match, f"unsupported template directive {keys[0]!r}"
            if evaluate(match.group("cond"), context):
                out.extend(expand(item[keys[0]], context))
        else:
            assert not any("${{" in str(key) for key in keys), f"directive inside {item}"
            out.append(item)
    return out


def job(
    *task_ids: str, variables: dict[str, str] | None = None, status: str = "succeeded"
) -> dict[str, Any]:
    steps = [
        {"type": "Task", "task": {"id": task_id, "name": "x", "version": "1.0.0"}}
        for task_id in task_ids
    ]
    return {"job": {"steps": steps}, "variables": variables or {}, "jobStatus": status}


# --- the templates ---------------------------------------------------------------------------


def _decorators() -> list[tuple[str, str]]:
    found = []
    for contribution in MANIFEST["contributions"]:
        if contribution["type"] == DECORATOR:
            for target in contribution["targets"]:
                found.append((target, contribution["properties"]["template"]))
    return found


DECORATORS = _decorators()


def load(template: str) -> list[Any]:
    document = yaml.safe_load((ROOT / template).read_text())
    assert set(document) == {"steps"}, "a decorator template holds only steps"
    steps = document["steps"]
    assert isinstance(steps, list)
    return steps


def test_every_target_has_one_decorator() -> None:
    assert sorted(target for target, _ in DECORATORS) == sorted(TARGETS)


@pytest.mark.parametrize(("target", "template"), DECORATORS)
def test_a_plain_job_gets_exactly_one_task_step(target: str, template: str) -> None:
    injected = expand(load(template), job(OTHER_TASK, OTHER_TASK))
    assert len(injected) == 1
    step = injected[0]
    assert step["task"] == f"{GUID}@{TASK['version']['Major']}"
    assert step["inputs"]["command"] == TARGETS[target]
    assert step["continueOnError"] is True
    assert 1 <= step["timeoutInMinutes"] <= 5
    assert OPT_OUT in step["displayName"], "the display name tells how to opt out"


@pytest.mark.parametrize(("target", "template"), DECORATORS)
@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_the_opt_out_variable_removes_the_step(target: str, template: str, value: str) -> None:
    assert expand(load(template), job(OTHER_TASK, variables={OPT_OUT: value})) == []


@pytest.mark.parametrize(("target", "template"), DECORATORS)
@pytest.mark.parametrize("value", ["false", "", "no"])
def test_other_values_of_the_opt_out_variable_keep_the_step(
    target: str, template: str, value: str
) -> None:
    assert len(expand(load(template), job(variables={OPT_OUT: value}))) == 1


@pytest.mark.parametrize(("target", "template"), DECORATORS)
@pytest.mark.parametrize("guid", [GUID, GUID.upper()])
def test_a_job_that_uses_the_task_itself_gets_nothing(
    target: str, template: str, guid: str
) -> None:
    assert expand(load(template), job(OTHER_TASK, guid)) == []


@pytest.mark.parametrize(("target", "template"), DECORATORS)
def test_the_runtime_condition_honours_the_opt_out(target: str, template: str) -> None:
    # Variables from variable groups or set by earlier steps reach only the runtime condition.
    (step,) = expand(load(template), job())
    assert evaluate(step["condition"], job()) is True
    assert evaluate(step["condition"], job(variables={OPT_OUT: "true"})) is False


@pytest.mark.parametrize(
    ("target", "template"), [(t, p) for t, p in DECORATORS if TARGETS[t] == "post-job"]
)
@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_post_job_runs_whatever_the_outcome(target: str, template: str, status: str) -> None:
    (step,) = expand(load(template), job(status=status))
    assert evaluate(step["condition"], job(status=status)) is True


@pytest.mark.parametrize(("target", "template"), DECORATORS)
def test_templates_are_addressable_files(target: str, template: str) -> None:
    files = {entry["path"]: entry for entry in MANIFEST["files"]}
    assert files[template].get("addressable") is True


def test_the_evaluator_is_not_vacuous() -> None:
    # The checks above mean something only if the evaluator can say no.
    context = job(OTHER_TASK, variables={"a": "x"})
    assert evaluate(f"containsValue(job.steps.*.task.id, '{OTHER_TASK}')", context) is True
    assert evaluate(f"containsValue(job.steps.*.task.id, '{GUID}')", context) is False
    assert evaluate("and(ne(variables['a'], 'x'), always())", context) is False
    assert evaluate("or(eq(variables['missing'], 'true'), succeeded())", context) is True
    assert evaluate("succeeded()", job(status="failed")) is False

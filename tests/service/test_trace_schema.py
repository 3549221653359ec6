"""`docs/trace-answer.schema.json` is what the answer models generate, and it is a valid schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from container_mapping.service.trace.schema import text

DOCUMENT = Path(__file__).parents[2] / "docs" / "trace-answer.schema.json"


def test_the_checked_in_schema_is_the_generated_one() -> None:
    assert DOCUMENT.read_text() == text(), (
        "regenerate: python3 -m container_mapping.service.trace.schema "
        "docs/trace-answer.schema.json"
    )


def test_the_schema_is_valid_and_refuses_a_wrong_answer() -> None:
    schema = json.loads(DOCUMENT.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {"query": {"kind": "digest", "value": "sha256:" + "a" * 64, "cluster": None},
            "images": [], "unmapped": [], "truncated": False}  # fmt: skip
    validator.validate(good)
    bad = dict(good, query={"kind": "colour", "value": None, "cluster": None})
    assert not validator.is_valid(bad)
    assert not validator.is_valid({"images": []})

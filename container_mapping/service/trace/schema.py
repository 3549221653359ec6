"""`docs/trace-answer.schema.json`: the JSON Schema of `trace --json` and `GET /v1/trace`.

Generated from the answer's pydantic models, so it cannot drift from them; a test compares the
checked-in file with a fresh generation. Regenerate with
`python3 -m container_mapping.service.trace.schema docs/trace-answer.schema.json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from container_mapping.service.trace.models import TraceAnswer

SCHEMA_ID = "https://container-mapping.dev/schemas/trace-answer/1.0"


def schema() -> dict[str, Any]:
    generated = TraceAnswer.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **generated,
    }


def text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as out:
            out.write(text())
    else:
        sys.stdout.write(text())

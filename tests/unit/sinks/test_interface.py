"""The protocols the task's `protocol` input offers are the sinks' protocols, no more, no less."""

from __future__ import annotations

import json
from pathlib import Path

from container_mapping.sinks.interface import SinkProtocol

TASK_JSON = Path(__file__).resolve().parents[3] / "task" / "task.json"


def test_the_task_offers_exactly_the_sink_protocols() -> None:
    task = json.loads(TASK_JSON.read_text(encoding="utf-8"))
    (protocol,) = [field for field in task["inputs"] if field["name"] == "protocol"]
    assert tuple(protocol["options"]) == tuple(p.value for p in SinkProtocol)
    assert protocol["defaultValue"] == SinkProtocol.DEFENDER.value

"""The `defender` part of a trace, as a table for the terminal (rich)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

SEVERITIES = ("critical", "high", "medium", "low")


def defender_table(part: dict[str, Any]) -> Table:
    f = part["findings"]
    counts = ", ".join(f"{f[s]} {s}" for s in SEVERITIES)
    table = Table(title=f"Defender for Cloud: {counts}", title_justify="left")
    for column in ("where", "name", "repository", "tags", *SEVERITIES, "changed"):
        table.add_column(column, overflow="fold")
    for place in [*part["registries"], *part["clusters"]]:
        table.add_row(
            place["kind"], place["name"], f"{place['registry']}/{place['repository']}",
            ", ".join(place["tags"]), *(str(place["findings"][s]) for s in SEVERITIES),
            place["changedAt"],
        )  # fmt: skip
    return table

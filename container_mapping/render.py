"""A report as a table a person reads on a terminal."""

from __future__ import annotations

from container_mapping.model import ImageRecord, MappingReport


def table(report: MappingReport) -> str:
    rows = [("IMAGE", "DIGEST", "PUSHED", "ATTRIBUTION", "REGISTRY CHECK")]
    rows += [_row(r) for r in report.images]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if not report.images:
        lines = ["no image was pushed or built in the window"]
    for record in report.skipped:
        lines.append(f"skipped {_name(record)}: its labels name another pipeline run")
    notes = [f"{_name(r)}: {r.note}" for r in report.images if r.note]
    return "\n".join(lines + notes) + "\n"


def _row(record: ImageRecord) -> tuple[str, str, str, str, str]:
    return (
        _name(record),
        record.digest or "(unknown)",
        "yes" if record.pushed else "no (built only)",
        record.attribution.value,
        record.verification.value,
    )


def _name(record: ImageRecord) -> str:
    ref = record.reference
    return f"{ref.familiar_name}:{ref.tag}" if ref.tag else ref.familiar_name

"""Defender for Cloud's container-mapping body, in the very lines Microsoft's task sends.

Microsoft's task sends `docker --version`, the output of
`docker events --filter event=push --filter type=image --format ID={{.ID}}` and of
`docker images --format` with
`CreatedAt={{.CreatedAt}}::Repo={{.Repository}}::Tag={{.Tag}}::Digest={{.Digest}}`.
A connected Defender tenant parses exactly those lines, so they are rebuilt here from the
report, with two deliberate differences: `dockerVersion` is the engine's version (the client's
says nothing about what pushed), and only the images this job pushed are listed (the whole
host's image list leaks other jobs' images on shared agents and grows with the host).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from container_mapping.model import Basis, ImageRecord, MappingReport

NONE = "<none>"  # what `docker images` prints for a missing tag or digest


def body(report: MappingReport) -> dict[str, Any]:
    """`{"dockerVersion", "dockerEvents", "dockerImages"}` for the records this job pushed.

    Ambiguous records (another job used the engine then, and nothing decides) are left out:
    these lines cannot say how sure a mapping is. The task's summary line counts them.
    """
    pushed = tuple(r for r in report.pushed if r.basis is not Basis.AMBIGUOUS)
    return {
        "dockerVersion": report.engine_version or "",
        "dockerEvents": _unique(event_line(r) for r in pushed),
        "dockerImages": _unique(image_line(r, report.generated_at) for r in pushed),
    }


def event_line(record: ImageRecord) -> str:
    """`ID=<reference as docker prints it>`: `nginx:1`, `127.0.0.1:5000/app:1`."""
    ref = record.reference
    if ref.tag is not None:
        return f"ID={ref.familiar_name}:{ref.tag}"
    return f"ID={ref.familiar_name}@{ref.digest}"


def image_line(record: ImageRecord, fallback_time: datetime) -> str:
    ref = record.reference
    created = record.created or record.pushed_at or fallback_time
    return (
        f"CreatedAt={go_time(created)}::Repo={ref.familiar_name}"
        f"::Tag={ref.tag or NONE}::Digest={ref.digest or NONE}"
    )


def go_time(value: datetime) -> str:
    """Go's default time format in UTC, as `docker images` prints it.

    For example `2026-11-27 09:20:59 +0000 UTC`.
    """
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _unique(lines: Any) -> list[str]:
    return list(dict.fromkeys(lines))

"""The `defender` part of an image's trace, called by the trace service for each image.

It reads the caller's organization's rows only, by the image's digest family (the image, its
index, its platform manifests), as the rest of the chain does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from container_mapping.service.defender.answer import DefenderPart, DefenderPlace, Findings
from container_mapping.service.defender.models import DefenderImageRow

MAX_ROWS = 200
SEVERITIES = ("critical", "high", "medium", "low", "other")


def defender_part(session: Session, org_id: str, family: Sequence[str]) -> DefenderPart | None:
    rows = list(
        session.scalars(
            select(DefenderImageRow)
            .where(DefenderImageRow.org_id == org_id, DefenderImageRow.digest.in_(list(family)))
            .order_by(DefenderImageRow.kind, DefenderImageRow.name, DefenderImageRow.repository)
            .limit(MAX_ROWS)
        )
    )
    if not rows:
        return None
    places = [_place(r) for r in rows]
    worst = {s: max(getattr(r, s) for r in rows) for s in SEVERITIES}
    return DefenderPart(
        findings=Findings(**worst, total=sum(worst.values())),
        registries=[p for p in places if p.kind == "registry"],
        clusters=[p for p in places if p.kind == "cluster"],
    )


def _place(row: DefenderImageRow) -> DefenderPlace:
    from container_mapping.service.trace.service import format_time

    counts = {s: getattr(row, s) for s in SEVERITIES}
    return DefenderPlace(
        kind=row.kind,  # type: ignore[arg-type]
        name=row.name,
        resourceId=row.resource_id,
        subscription=row.subscription,
        registry=row.registry_host,
        repository=row.repository,
        digest=row.digest,
        tags=list(row.tags or []),
        lastPushed=row.last_pushed,
        findings=Findings(**counts, total=sum(counts.values())),
        changedAt=format_time(row.changed_at) or "",
    )

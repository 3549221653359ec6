"""The `defender` part of each image's trace, added by the trace service to what it assembled.

Defender's rows for all the digests of one question are read at once (the caller's
organization's only), then each image gets the rows of its digest family (the image, its index,
its platform manifests), as the rest of its chain does. An image only Defender knows of is
traced too: that is where a vulnerable image nobody mapped shows up.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from container_mapping.service.defender.answer import DefenderPart, DefenderPlace, Findings
from container_mapping.service.defender.models import DefenderImageRow
from container_mapping.service.trace.models import ImageTrace, Related

MAX_ROWS = 200  # per image, as the other parts of a chain
IN_BATCH = 500
SEVERITIES = ("critical", "high", "medium", "low", "other")


def defender_rows(session: Session, org_id: str, digests: Sequence[str]) -> list[DefenderImageRow]:
    values = sorted(set(digests))
    found: list[DefenderImageRow] = []
    for start in range(0, len(values), IN_BATCH):
        found.extend(
            session.scalars(
                select(DefenderImageRow)
                .where(
                    DefenderImageRow.org_id == org_id,
                    DefenderImageRow.digest.in_(values[start : start + IN_BATCH]),
                )
                .order_by(DefenderImageRow.kind, DefenderImageRow.name, DefenderImageRow.repository)
            )
        )
    return found


def with_defender(
    trace: ImageTrace | None,
    digest: str,
    related: list[Related],
    family: Sequence[str],
    rows: Sequence[DefenderImageRow],
) -> ImageTrace | None:
    """`trace` with the family's Defender part; a trace of Defender's alone if there was none."""
    members = set(family)
    part = defender_part([r for r in rows if r.digest in members][:MAX_ROWS])
    if part is None:
        return trace
    if trace is None:
        return ImageTrace(
            digest=digest, related=related, producedBy=[], storedIn=[], runsIn=[], defender=part
        )
    return trace.model_copy(update={"defender": part})


def defender_part(rows: Sequence[DefenderImageRow]) -> DefenderPart | None:
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

"""Storing an import: compare each record with the stored one, write only what differs.

A record's identity is (kind, place, registry, repository, digest); its content (tags, media
type, last push, findings) is summed up in a fingerprint. New records are inserted, records
whose fingerprint moved are updated (and their `changed_at` with them), the rest are left as
they are and only noted as seen by this import. The import's last call removes, within the
subscriptions it named, the rows it has not seen: what Defender no longer shows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from container_mapping.service.defender.models import (
    Changes,
    DefenderImageRow,
    DefenderLinked,
    DefenderLinkIn,
    ImportSeenRow,
    Kind,
    SeenIn,
)
from container_mapping.service.errors import ServiceError, invalid
from container_mapping.service.ingestion.models import TAG

_TAG_RE = re.compile(TAG)
IN_BATCH = 500
STALE_IMPORT = timedelta(days=1)  # an import left unfinished this long is forgotten


def store(session: Session, org_id: str, body: DefenderLinkIn) -> DefenderLinked:
    _check_scope(body)
    try:
        answer = _store(session, org_id, body)
        session.commit()
    except IntegrityError as err:  # two imports of one organization adding the same record
        session.rollback()
        raise ServiceError(409, "another import is writing the same records; run it again") from err
    return answer


def _store(session: Session, org_id: str, body: DefenderLinkIn) -> DefenderLinked:
    now = datetime.now(timezone.utc)
    images = _apply(session, org_id, body.importId, "registry", body.images, now)
    running = _apply(session, org_id, body.importId, "cluster", body.running, now)
    if body.complete:
        images.removed, running.removed = _sweep(session, org_id, body, now)
    return DefenderLinked(
        importId=body.importId, complete=body.complete, images=images, running=running
    )


def _check_scope(body: DefenderLinkIn) -> None:
    scope = {s.lower() for s in body.subscriptions}
    for part, records in (("images", body.images), ("running", body.running)):
        for i, record in enumerate(records):
            if record.subscription.lower() not in scope:
                raise invalid(
                    "the record's subscription is not among the import's `subscriptions`",
                    field=f"{part}[{i}].subscription",
                )


def _apply(
    session: Session, org_id: str, import_id: str, kind: Kind, records: Sequence[SeenIn],
    now: datetime,
) -> Changes:  # fmt: skip
    wanted = {_key(kind, r.resourceId, r.registry, r.repository, r.digest): r for r in records}
    stored = _stored(session, org_id, kind, sorted({r.digest for r in records}))
    changes = Changes()
    rows: list[DefenderImageRow] = []
    for key, record in wanted.items():
        values = _values(record)
        row = stored.get(key)
        if row is None:
            row = DefenderImageRow(org_id=org_id, kind=kind, first_seen=now, changed_at=now,
                                   **values)  # fmt: skip
            session.add(row)
            changes.added += 1
        elif row.fingerprint != values["fingerprint"]:
            for name, value in values.items():
                setattr(row, name, value)
            row.changed_at = now
            changes.updated += 1
        else:
            changes.unchanged += 1
        rows.append(row)
    session.flush()
    _note_seen(session, org_id, import_id, [r.id for r in rows], now)
    return changes


def _stored(
    session: Session, org_id: str, kind: str, digests: list[str]
) -> dict[tuple[str, ...], DefenderImageRow]:
    found: dict[tuple[str, ...], DefenderImageRow] = {}
    for start in range(0, len(digests), IN_BATCH):
        chunk = digests[start : start + IN_BATCH]
        for row in session.scalars(
            select(DefenderImageRow).where(
                DefenderImageRow.org_id == org_id,
                DefenderImageRow.kind == kind,
                DefenderImageRow.digest.in_(chunk),
            )
        ):
            key = _key(kind, row.resource_id, row.registry_host, row.repository, row.digest)
            found[key] = row
    return found


def _key(
    kind: str, resource_id: str, registry: str, repository: str, digest: str
) -> tuple[str, ...]:
    return (kind, resource_id.lower(), registry.lower(), repository, digest)


def _values(record: SeenIn) -> dict[str, Any]:
    f = record.findings
    values: dict[str, Any] = {
        "resource_id": record.resourceId,
        "subscription": record.subscription.lower(),
        "name": record.name,
        "registry_host": record.registry.lower(),
        "repository": record.repository,
        "digest": record.digest,
        "tags": sorted({t for t in record.tags if _TAG_RE.fullmatch(t)}),
        "media_type": record.mediaType,
        "last_pushed": record.lastPushed,
        "critical": f.critical,
        "high": f.high,
        "medium": f.medium,
        "low": f.low,
        "other": f.other,
    }
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    values["fingerprint"] = hashlib.sha256(text.encode()).hexdigest()
    return values


def _note_seen(
    session: Session, org_id: str, import_id: str, row_ids: list[int], now: datetime
) -> None:
    if not row_ids:
        return
    known = set(
        session.scalars(
            select(ImportSeenRow.row_id).where(
                ImportSeenRow.org_id == org_id,
                ImportSeenRow.import_id == import_id,
                ImportSeenRow.row_id.in_(row_ids),
            )
        )
    )
    for row_id in sorted(set(row_ids) - known):
        session.add(ImportSeenRow(org_id=org_id, import_id=import_id, row_id=row_id, seen_at=now))
    session.flush()


def _sweep(session: Session, org_id: str, body: DefenderLinkIn, now: datetime) -> tuple[int, int]:
    """Drop the rows of these subscriptions this import did not see; forget the import."""
    seen = select(ImportSeenRow.row_id).where(
        ImportSeenRow.org_id == org_id, ImportSeenRow.import_id == body.importId
    )
    removed = {"registry": 0, "cluster": 0}
    scope = [s.lower() for s in body.subscriptions]
    for row in session.scalars(
        select(DefenderImageRow).where(
            DefenderImageRow.org_id == org_id,
            DefenderImageRow.subscription.in_(scope),
            DefenderImageRow.id.not_in(seen),
        )
    ):
        removed[row.kind] = removed.get(row.kind, 0) + 1
        session.delete(row)
    session.flush()
    session.execute(
        delete(ImportSeenRow).where(
            ImportSeenRow.org_id == org_id,
            (ImportSeenRow.import_id == body.importId)
            | (ImportSeenRow.seen_at < now - STALE_IMPORT),
        )
    )
    return removed["registry"], removed["cluster"]

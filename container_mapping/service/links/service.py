"""Storing links: a crawl replaces the repositories it read, a snapshot replaces its cluster.

Both happen in one transaction each. A snapshot first takes its cluster's row in
`cluster_snapshots` (an UPDATE, which PostgreSQL holds as a row lock until commit), so two
snapshots of one cluster arriving at once on two processes are applied one after the other,
never interleaved.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from container_mapping.model import parse_time
from container_mapping.service.errors import ServiceError
from container_mapping.service.links.labels import claims
from container_mapping.service.links.models import (
    ArtifactIn,
    ArtifactRow,
    PodsLinked,
    PodsLinkIn,
    RegistryLinked,
    RegistryLinkIn,
    SnapshotRow,
    WorkloadRow,
)

INSERT_BATCH = 5000


def store_crawl(session: Session, org_id: str, body: RegistryLinkIn) -> RegistryLinked:
    crawled_at = parse_time(body.crawledAt)
    repositories = set(body.repositories) | {a.repository for a in body.artifacts}
    rows: dict[tuple[str, str, str], dict[str, object]] = {}
    for artifact in body.artifacts:
        place = (artifact.repository, artifact.digest, artifact.parentDigest or "")
        rows[place] = _artifact_row(org_id, body.registry, artifact, crawled_at)
    for repository in sorted(repositories):
        session.execute(
            delete(ArtifactRow).where(
                ArtifactRow.org_id == org_id,
                ArtifactRow.registry_host == body.registry,
                ArtifactRow.repository == repository,
            )
        )
    try:
        _insert(session, ArtifactRow, list(rows.values()))
        session.commit()
    except IntegrityError as err:  # another crawl of these repositories committed meanwhile
        session.rollback()
        raise ServiceError(
            409, "another crawl of these repositories was stored at the same moment; post again"
        ) from err
    return RegistryLinked(
        registry=body.registry, repositories=len(repositories), artifacts=len(rows)
    )


def _artifact_row(
    org_id: str, registry: str, artifact: ArtifactIn, crawled_at: datetime
) -> dict[str, object]:
    said = claims(artifact.labels)
    platform = artifact.platform
    return {
        "org_id": org_id,
        "registry_host": registry,
        "repository": artifact.repository,
        "digest": artifact.digest,
        "media_type": artifact.mediaType,
        "tags": artifact.checked_tags(),
        "parent_digest": artifact.parentDigest or "",
        "platform_os": platform.os if platform else None,
        "platform_architecture": platform.architecture if platform else None,
        "platform_variant": platform.variant if platform else None,
        "labels": artifact.labels,
        "label_repository": said.repository,
        "label_commit": said.commit,
        "label_run_id": said.run_id,
        "label_collection": said.collection,
        "evidence": "label" if said.any else None,
        "crawled_at": crawled_at,
    }


def replace_snapshot(session: Session, org_id: str, body: PodsLinkIn) -> PodsLinked:
    snapshot_id = str(uuid.uuid4())
    taken_at = parse_time(body.takenAt)
    _claim_cluster(session, org_id, body, snapshot_id, taken_at)
    session.execute(
        delete(WorkloadRow).where(WorkloadRow.org_id == org_id, WorkloadRow.cluster == body.cluster)
    )
    rows = [
        {
            "org_id": org_id,
            "cluster": body.cluster,
            "snapshot_id": snapshot_id,
            "namespace": c.namespace,
            "pod": c.pod,
            "owner_kind": c.ownerKind,
            "owner_name": c.ownerName,
            "owner_inferred": c.ownerInferred,
            "container": c.container,
            "container_kind": c.containerKind,
            "image": c.image,
            "image_id": c.imageId,
            "digest": c.digest if c.resolvable else None,
            "resolvable": c.resolvable and c.digest is not None,
            "last_seen": taken_at,
        }
        for c in body.containers
    ]
    _insert(session, WorkloadRow, rows)
    session.commit()
    resolvable = sum(1 for r in rows if r["resolvable"])
    return PodsLinked(
        cluster=body.cluster, snapshotId=snapshot_id, containers=len(rows), resolvable=resolvable
    )


def _claim_cluster(
    session: Session, org_id: str, body: PodsLinkIn, snapshot_id: str, taken_at: datetime
) -> None:
    values = {
        "snapshot_id": snapshot_id,
        "taken_at": taken_at,
        "received_at": datetime.now(timezone.utc),
        "containers": len(body.containers),
    }
    where = (SnapshotRow.org_id == org_id, SnapshotRow.cluster == body.cluster)
    updated: Any = session.execute(update(SnapshotRow).where(*where).values(**values))
    if updated.rowcount:
        return
    try:
        with session.begin_nested():
            session.execute(
                insert(SnapshotRow).values(org_id=org_id, cluster=body.cluster, **values)
            )
    except IntegrityError:  # the first snapshot of this cluster, sent twice at once
        session.execute(update(SnapshotRow).where(*where).values(**values))


def _insert(session: Session, table: type, rows: Sequence[Mapping[str, object]]) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        session.execute(insert(table), rows[start : start + INSERT_BATCH])

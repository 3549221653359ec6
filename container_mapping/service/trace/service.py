"""The questions, as queries of one organization's rows.

Every query names `org_id` first, and every index it uses starts with it: one organization's
answer is built from its own rows only, and a digest another organization holds is as unknown
here as one nobody holds. A digest is traced together with its relatives from the registry
crawl (the index that holds it, or the platform manifests it holds), so a run that pushed an
index is found from the platform digest a node pulled, and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from container_mapping.errors import InvalidReference
from container_mapping.reference import ImageReference
from container_mapping.service.defender.trace import defender_rows, with_defender
from container_mapping.service.ingestion.models import ImageRow, ReportRow
from container_mapping.service.links.models import ArtifactRow, WorkloadRow
from container_mapping.service.organizations import OrganizationRow
from container_mapping.service.trace.models import (
    ImageTrace,
    Named,
    ProducedBy,
    Related,
    Run,
    RunsIn,
    SourceRepository,
    StoredIn,
    Workload,
)

MAX_IMAGES = 50
MAX_ROWS = 200  # per part of one image's chain
IN_BATCH = 500


@dataclass(frozen=True)
class Found:
    images: list[ImageTrace]
    truncated: bool = False


def trace_digests(session: Session, org_id: str, digests: Sequence[str]) -> Found:
    """Each digest's chain, in the order given; digests nothing is known of are left out.

    Five indexed queries whatever the number of digests: the crawl's rows of the digests and
    their children, their indexes' rows, the pushes, the containers, the organization's name.
    """
    wanted = list(dict.fromkeys(digests))[:MAX_IMAGES]
    if not wanted:
        return Found([], False)
    near = list(
        session.scalars(
            select(ArtifactRow).where(
                ArtifactRow.org_id == org_id,
                or_(ArtifactRow.digest.in_(wanted), ArtifactRow.parent_digest.in_(wanted)),
            )
        )
    )
    parents = sorted({a.parent_digest for a in near if a.digest in wanted and a.parent_digest})
    artifacts = near + _artifacts(session, org_id, parents)
    related = {d: _related(d, near, _parents_of(d, near)) for d in wanted}
    families = {d: [d, *(r.digest for r in related[d])] for d in wanted}
    every = sorted({member for family in families.values() for member in family})
    pushes = _pushes(session, org_id, every)
    runs = _runs_in(session, org_id, every)
    organization = session.get(OrganizationRow, org_id)
    name = organization.name if organization else None
    defender = defender_rows(session, org_id, every)
    traces = [
        with_defender(
            _assemble(d, related[d], families[d], artifacts, pushes, runs, org_id, name),
            d, related[d], families[d], defender,
        )  # fmt: skip
        for d in wanted
    ]
    found = [t for t in traces if t is not None]
    return Found(found, len(set(digests)) > MAX_IMAGES)


def trace_digest(session: Session, org_id: str, digest: str) -> ImageTrace | None:
    found = trace_digests(session, org_id, [digest]).images
    return found[0] if found else None


def _parents_of(digest: str, near: Sequence[ArtifactRow]) -> list[str]:
    return sorted({a.parent_digest for a in near if a.digest == digest and a.parent_digest})


def _assemble(
    digest: str,
    related: list[Related],
    family: Sequence[str],
    artifacts: Sequence[ArtifactRow],
    pushes: Sequence[tuple[ImageRow, ReportRow]],
    runs: Sequence[WorkloadRow],
    org_id: str,
    org_name: str | None,
) -> ImageTrace | None:
    members = set(family)
    mine = [a for a in artifacts if a.digest in members]
    my_pushes = [(i, r) for i, r in pushes if i.digest in members]
    produced = _produced_by(my_pushes, mine, org_id, org_name)
    stored = _stored_in(mine, my_pushes)
    running_here = [running(w) for w in runs if w.digest in members]
    if not (produced or stored or running_here):
        return None
    return ImageTrace(
        digest=digest, related=related, producedBy=produced, storedIn=stored, runsIn=running_here
    )


def _related(digest: str, near: Sequence[ArtifactRow], parents: Sequence[str]) -> list[Related]:
    found = {p: Related(digest=p, relation="index") for p in parents}
    for child in near:
        if child.parent_digest == digest:
            found.setdefault(
                child.digest,
                Related(digest=child.digest, relation="platform", platform=_platform(child)),
            )
    return list(found.values())


def _artifacts(session: Session, org_id: str, digests: Sequence[str]) -> list[ArtifactRow]:
    if not digests:
        return []
    return list(
        session.scalars(
            select(ArtifactRow)
            .where(ArtifactRow.org_id == org_id, ArtifactRow.digest.in_(list(digests)))
            .limit(MAX_ROWS)
        )
    )


def _pushes(
    session: Session, org_id: str, family: Sequence[str]
) -> list[tuple[ImageRow, ReportRow]]:
    rows = session.execute(
        select(ImageRow, ReportRow)
        .join(ReportRow, ReportRow.id == ImageRow.report_id)
        .where(ImageRow.org_id == org_id, ImageRow.digest.in_(list(family)))
        .order_by(ReportRow.received_at.desc())
        .limit(MAX_ROWS)
    ).all()
    return [(image, report) for image, report in rows]


def _produced_by(
    pushes: Sequence[tuple[ImageRow, ReportRow]],
    artifacts: Sequence[ArtifactRow],
    org_id: str,
    name: str | None,
) -> list[ProducedBy]:
    seen: dict[tuple[str, str], ProducedBy] = {}
    for image, report in pushes:
        key = (report.id, image.digest or "")
        if key not in seen:
            seen[key] = _from_report(image, report, name)
    reported = {m.commit.lower() for m in seen.values() if m.commit}
    labelled = [  # labels that only repeat a reported run's commit add nothing
        _from_labels(a, org_id, name)
        for a in artifacts
        if a.evidence == "label" and not (a.label_commit and a.label_commit in reported)
    ]
    return list(seen.values()) + _dedupe(labelled)


def _from_report(image: ImageRow, report: ReportRow, org_name: str | None) -> ProducedBy:
    when = image.pushed_at or report.received_at
    return ProducedBy(
        evidence="report",
        digest=image.digest or "",
        organization=Named(id=report.org_id, name=org_name),
        project=Named(id=report.project_id, name=report.project_name),
        pipeline=Named(id=report.pipeline_id, name=report.pipeline_name),
        run=Run(id=report.run_id, number=report.run_number),
        repository=SourceRepository(uri=report.repository_uri, name=report.repository_name),
        commit=report.commit,
        branch=report.branch,
        job=Named(id=report.job_id, name=report.job_name),
        when=format_time(when),
    )


def _from_labels(artifact: ArtifactRow, org_id: str, org_name: str | None) -> ProducedBy:
    return ProducedBy(
        evidence="label",
        digest=artifact.digest,
        organization=Named(id=org_id, name=org_name),
        project=Named(),
        pipeline=Named(),
        run=Run(id=artifact.label_run_id) if artifact.label_run_id else None,
        repository=SourceRepository(uri=artifact.label_repository),
        commit=artifact.label_commit,
        job=Named(),
        when=None,
    )


def _dedupe(items: list[ProducedBy]) -> list[ProducedBy]:
    return list(dict.fromkeys(items))


def _stored_in(
    artifacts: Sequence[ArtifactRow], pushes: Sequence[tuple[ImageRow, ReportRow]]
) -> list[StoredIn]:
    rows = {a.id: a for a in artifacts}
    found = [
        StoredIn(
            source="registry",
            registry=a.registry_host,
            repository=a.repository,
            tags=sorted(a.tags or []),
            digest=a.digest,
            mediaType=a.media_type,
            platform=_platform(a),
            parentDigest=a.parent_digest or None,
            seenAt=format_time(a.crawled_at),
        )
        for a in sorted(rows.values(), key=lambda a: (a.parent_digest or "", a.digest))
    ]
    crawled = {(s.registry, s.repository, s.digest) for s in found}
    return found + _reported_locations([image for image, _ in pushes], crawled)


def _reported_locations(
    images: Sequence[ImageRow], crawled: set[tuple[str, str, str]]
) -> list[StoredIn]:
    """Where the runs said they pushed, for the places no crawl has seen yet."""
    places: dict[tuple[str, str, str], set[str]] = {}
    latest: dict[tuple[str, str, str], datetime | None] = {}
    for image in images:
        key = (image.registry_host, image.repository, image.digest or "")
        if key in crawled:
            continue
        places.setdefault(key, set()).update([image.tag] if image.tag else [])
        latest[key] = max(filter(None, (latest.get(key), image.pushed_at)), default=None)
    return [
        StoredIn(
            source="report", registry=k[0], repository=k[1], tags=sorted(tags), digest=k[2],
            seenAt=format_time(latest[k]) if latest[k] else None,
        )
        for k, tags in sorted(places.items())
    ]  # fmt: skip


def _runs_in(session: Session, org_id: str, digests: Sequence[str]) -> list[WorkloadRow]:
    return list(
        session.scalars(
            select(WorkloadRow)
            .where(WorkloadRow.org_id == org_id, WorkloadRow.digest.in_(list(digests)))
            .order_by(WorkloadRow.cluster, WorkloadRow.namespace, WorkloadRow.pod)
            .limit(MAX_ROWS * 4)
        )
    )


def running(w: WorkloadRow) -> RunsIn:
    return RunsIn(
        cluster=w.cluster,
        namespace=w.namespace,
        workload=Workload(kind=w.owner_kind, name=w.owner_name, inferred=w.owner_inferred),
        pod=w.pod,
        container=w.container,
        containerKind=w.container_kind,  # type: ignore[arg-type]
        image=w.image,
        imageId=w.image_id,
        digest=w.digest,
        resolvable=w.resolvable,
        lastSeen=format_time(w.last_seen) or "",
    )


# ---------------------------------------------------------------- from other questions


def digests_for_reference(session: Session, org_id: str, text: str) -> list[str]:
    """The digest a reference names: its own, else what its tag points at (crawl, then reports)."""
    try:
        ref = ImageReference.parse(text)
    except InvalidReference:
        return []
    if ref.digest:
        return [ref.digest]
    tag = ref.tag or "latest"
    # Tagged rows are filtered here, not in SQL: with `parent_digest = ''` in the query,
    # SQLite's planner took the (org, parent) index and read every tagged row of the org.
    for digest, tags in session.execute(
        select(ArtifactRow.digest, ArtifactRow.tags).where(
            ArtifactRow.org_id == org_id,
            ArtifactRow.registry_host == ref.registry,
            ArtifactRow.repository == ref.repository,
        )
    ):
        if tag in (tags or []):
            return [str(digest)]
    pushed = session.scalar(
        select(ImageRow.digest)
        .where(
            ImageRow.org_id == org_id,
            ImageRow.registry_host == ref.registry,
            ImageRow.repository == ref.repository,
            ImageRow.tag == tag,
            ImageRow.digest.is_not(None),
        )
        .order_by(ImageRow.pushed_at.desc(), ImageRow.id.desc())
        .limit(1)
    )
    return [pushed] if pushed else []


def digests_for_runs(session: Session, org_id: str, *conditions: ColumnElement[bool]) -> list[str]:
    """Digests the matching reports pushed, newest first, then those labels claim."""
    return _distinct(
        session.scalars(
            select(ImageRow.digest)
            .join(ReportRow, ReportRow.id == ImageRow.report_id)
            .where(ReportRow.org_id == org_id, ImageRow.digest.is_not(None), *conditions)
            .order_by(ReportRow.received_at.desc(), ImageRow.id)
            .limit(MAX_IMAGES * 4)
        )
    )


def digests_for_commit(session: Session, org_id: str, commit: str) -> list[str]:
    commit = commit.lower()
    if len(commit) == 40:
        by_report = ReportRow.commit == commit
        by_label = ArtifactRow.label_commit == commit
    else:
        by_report = ReportRow.commit.startswith(commit, autoescape=True)
        by_label = ArtifactRow.label_commit.startswith(commit, autoescape=True)
    return _distinct(
        [*digests_for_runs(session, org_id, by_report), *_labelled(session, org_id, by_label)]
    )


def digests_for_repository(session: Session, org_id: str, uri: str) -> list[str]:
    forms = _repository_forms(uri)
    return _distinct(
        [
            *digests_for_runs(session, org_id, ReportRow.repository_uri.in_(forms)),
            *_labelled(session, org_id, ArtifactRow.label_repository.in_(forms)),
        ]
    )


def digests_for_pipeline(
    session: Session, org_id: str, organization: str, project: str, pipeline: str
) -> list[str]:
    names = _org_names(session)
    if organization.lower() not in (org_id.lower(), (names.get(org_id) or "").lower()):
        return []
    return digests_for_runs(
        session,
        org_id,
        or_(ReportRow.project_id == project, ReportRow.project_name == project),
        or_(ReportRow.pipeline_id == pipeline, ReportRow.pipeline_name == pipeline),
    )


def _labelled(session: Session, org_id: str, condition: ColumnElement[bool]) -> list[str]:
    return list(
        session.scalars(
            select(ArtifactRow.digest)
            .where(ArtifactRow.org_id == org_id, ArtifactRow.evidence == "label", condition)
            .limit(MAX_IMAGES * 4)
        )
    )


def _repository_forms(uri: str) -> list[str]:
    """The URI as given, without a trailing slash, and without `.git`: clones name it each way."""
    base = uri.strip().rstrip("/")
    bare = base.removesuffix(".git")
    return list(dict.fromkeys([uri.strip(), base, bare, bare + ".git"]))


# ---------------------------------------------------------------- what nobody produced


def unmapped(session: Session, org_id: str, cluster: str | None) -> list[RunsIn]:
    """Containers of the last snapshots that no report or label links to a run."""
    query = select(WorkloadRow).where(WorkloadRow.org_id == org_id)
    if cluster:
        query = query.where(WorkloadRow.cluster == cluster)
    order = (WorkloadRow.cluster, WorkloadRow.namespace, WorkloadRow.pod, WorkloadRow.container)
    rows = list(session.scalars(query.order_by(*order)))
    digests = {w.digest for w in rows if w.digest}
    mapped = _mapped(session, org_id, digests)
    return [running(w) for w in rows if w.digest not in mapped]


def _mapped(session: Session, org_id: str, digests: set[str]) -> set[str]:
    """Those of `digests` a run produced, directly or through their index or platforms."""
    family: dict[str, set[str]] = {d: {d} for d in digests}
    fields = (ArtifactRow.digest, ArtifactRow.parent_digest, ArtifactRow.evidence)
    for chunk in _chunks(sorted(digests)):
        for digest, parent, evidence in session.execute(
            select(*fields).where(
                ArtifactRow.org_id == org_id,
                or_(ArtifactRow.digest.in_(chunk), ArtifactRow.parent_digest.in_(chunk)),
            )
        ):
            for own, other in ((digest, parent), (parent, digest)):
                if own not in family:
                    continue
                if other:
                    family[own].add(other)
                if evidence == "label":
                    family[own].add("label:")
    every = set().union(*family.values()) if family else set()
    pushed = {
        digest
        for chunk in _chunks(sorted(every))
        for digest in session.scalars(
            select(ImageRow.digest).where(ImageRow.org_id == org_id, ImageRow.digest.in_(chunk))
        )
    }
    return {d for d, members in family.items() if "label:" in members or members & pushed}


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + IN_BATCH] for i in range(0, len(values), IN_BATCH)]


# ---------------------------------------------------------------- small helpers


def _org_names(session: Session) -> dict[str, str]:
    return {row.id: row.name for row in session.scalars(select(OrganizationRow))}


def _platform(artifact: ArtifactRow) -> str | None:
    parts = (artifact.platform_os, artifact.platform_architecture, artifact.platform_variant)
    return "/".join(p for p in parts if p) or None


def _distinct(values: Iterable[str | None]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v]


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes; they were stored in UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

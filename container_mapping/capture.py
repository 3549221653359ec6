"""Capture: run the collectors, judge attribution, settle digests, build the report.

This is the whole of what `collect` and post-job share. It takes typed settings: the entry
points (`task.py`, `cli.py`) read the environment once and build the collectors and the registry
client from it (`docker_collectors`, `registry_factory`). The registry is asked only where it
must be (a record without a digest), unless `verify` asks it for every pushed record. What the
collectors notice (a cut event buffer, an invalid event) is returned as the report's warnings,
for the caller to show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from container_mapping.attribution import attribute
from container_mapping.collect.docker import EngineAbsent
from container_mapping.collect.interface import Collection, Collector, Pusher
from container_mapping.collect.sources import JOB_DIRECTORIES_ENV
from container_mapping.errors import Error
from container_mapping.model import (
    Attribution,
    Basis,
    CollectionWindow,
    ImageRecord,
    MappingReport,
    PipelineContext,
    Verification,
)
from container_mapping.reference import ImageReference

if TYPE_CHECKING:
    from container_mapping.registry import DigestSource

RegistryFactory = Callable[[], "DigestSource"]


def docker_collectors(environ: Mapping[str, str], recording: str | None = None) -> list[Collector]:
    """The collectors for this host: the Docker engine found as the docker CLI finds it."""
    from container_mapping.collect.docker import DockerCollector

    return [DockerCollector.from_environment(environ, recording)]


def all_collectors(
    environ: Mapping[str, str],
    registry: RegistryFactory,
    *,
    host_log: bool = True,
    recording: str | None = None,
) -> list[Collector]:
    """Every collector: the Docker engine, podman's event log, the job's metadata files, buildah.

    Making them costs no process and no request: each looks at its source only in `collect`,
    and one whose tool is absent finds nothing there at the cost of a `stat`. `host_log`
    false leaves out podman's event log, which holds every job's pushes on the host: post-job
    reads it only in a window that pre-job's record bounds, never in a guessed one.
    """
    from container_mapping.collect.podman import PodmanCollector

    found: list[Collector] = [
        *docker_collectors(environ, recording),
        PodmanCollector.for_this_user() if host_log else PodmanCollector(None),
    ]
    if not environ.get(JOB_DIRECTORIES_ENV):  # no pre-job record: no files to read, no import
        return found
    from container_mapping.collect.buildah import BuildahCollector
    from container_mapping.collect.files import JobFiles
    from container_mapping.collect.metadata import MetadataCollector

    files = JobFiles.from_environment(environ)
    found.append(MetadataCollector(files, registry))
    found.append(BuildahCollector.from_environment(files, environ, registry))
    return found


def registry_factory(environ: Mapping[str, str]) -> RegistryFactory:
    """A registry client made on first need (and once), with the Docker config's credentials."""
    made: list[DigestSource] = []

    def make() -> DigestSource:
        from container_mapping.registry import RegistryClient

        if not made:
            made.append(RegistryClient(environ=environ))
        return made[0]

    return make


def capture(
    window: CollectionWindow,
    context: PipelineContext,
    *,
    collectors: Sequence[Collector],
    registry: RegistryFactory,
    verify: bool = False,
    deadline: float | None = None,
    on_push: Callable[[], None] | None = None,
) -> MappingReport:
    """Everything the job pushed in `window`, attributed and with digests settled.

    `on_push` is called as soon as a collector sees a push, before its slower work.
    """
    found = _collect_all(collectors, window, deadline, on_push)
    pushers = _pushers(found)
    records = [
        _by_process(_attributed(r, context), pushers, context)
        for r in merge(r for c in found for r in c.records)
    ]
    ours = [r for r in records if r.attribution is not Attribution.OTHER_RUN]
    settled = merge(_settle_digests(ours, registry, verify, deadline))
    images, index_warnings = _with_platforms(settled, registry, deadline)
    return MappingReport(
        window=window,
        pipeline=context,
        images=tuple(images),
        skipped=tuple(r for r in records if r.attribution is Attribution.OTHER_RUN),
        engine_version=_engine_version(found),
        warnings=tuple(w for c in found for w in c.warnings) + tuple(index_warnings),
    )


def _collect_all(
    collectors: Sequence[Collector],
    window: CollectionWindow,
    deadline: float | None,
    on_push: Callable[[], None] | None,
) -> list[Collection]:
    """Each collector's findings; a fault of the Docker engine is raised as before.

    The engine is the first collector: an engine that is configured but failing is the job's
    one warning (the task words it). No engine at all (`EngineAbsent`) is no fault when another
    collector found pushes, and is raised when none did (the task says "no engine here"). Any
    other collector's fault costs its own records and one warning.
    """
    found: list[Collection] = []
    absent: EngineAbsent | None = None
    for i, collector in enumerate(collectors):
        try:
            found.append(collector.collect(window, deadline, on_push))
        except EngineAbsent as err:
            absent = err
        except Error as err:
            if i == 0:
                raise
            found.append(Collection((), warnings=(f"{collector.name}: {err}",)))
    if absent is not None and not any(c.records for c in found):
        raise absent
    return found


def _attributed(record: ImageRecord, context: PipelineContext) -> ImageRecord:
    verdict, evidence = attribute(record.labels, context)
    if verdict is not Attribution.UNKNOWN:
        basis = Basis.LABEL
    else:  # a collector's own evidence (process, ambiguous) stands where labels say nothing
        basis = record.basis
    return dataclasses.replace(
        record, attribution=verdict, attribution_evidence=evidence, basis=basis
    )


#: Sources that see every job's pushes on the host (the others read this job's own files).
HOST_WIDE_SOURCES = frozenset({"docker", "podman"})


def _pushers(found: Sequence[Collection]) -> tuple[Pusher, ...] | None:
    watched = [c.pushers for c in found if c.pushers is not None]
    return tuple(p for group in watched for p in group) if watched else None


def _by_process(
    record: ImageRecord, pushers: tuple[Pusher, ...] | None, context: PipelineContext
) -> ImageRecord:
    """Where labels say nothing: the push client's job, else whether another job pushed too.

    A client of this job (its SYSTEM_JOBID and BUILD_BUILDID) pushing the reference makes the
    record ours; only another job's client makes it another run's (left out). No client seen,
    while another job's client was seen pushing in the window: `ambiguous`. Nobody watching
    (no recorder), or no other job seen: the window decides, as before.
    """
    if record.basis is Basis.LABEL or pushers is None or not context.in_pipeline:
        return record
    if not set(record.seen_by) <= HOST_WIDE_SOURCES:
        return record  # also seen in the job's own files
    plain = record.reference.with_digest(None)
    clients = [p for p in pushers if plain in p.references]
    ours = [p for p in clients if _same_job(p, context)]
    if ours and len(ours) == len(clients):
        return dataclasses.replace(record, attribution=Attribution.MATCH, basis=Basis.PROCESS)
    if clients and not ours:
        return dataclasses.replace(record, attribution=Attribution.OTHER_RUN, basis=Basis.PROCESS)
    if clients or any(not _same_job(p, context) for p in pushers):
        return dataclasses.replace(record, basis=Basis.AMBIGUOUS)
    return record


def _same_job(pusher: Pusher, context: PipelineContext) -> bool:
    return pusher.job_id == (context.job_id or "") and pusher.run_id == (context.run_id or "")


_Key = tuple[ImageReference, bool]


def merge(records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """One record per pushed (or built) reference and digest, naming every source that saw it.

    Records of one reference merge when their digests agree or one has none yet (the registry
    settles it later); two digests for one tag (a tag pushed twice) stay two records.
    """
    merged: dict[_Key, list[ImageRecord]] = {}
    for record in records:
        same = merged.setdefault((record.reference.with_digest(None), record.pushed), [])
        for i, kept in enumerate(same):
            if kept.digest is None or record.digest is None or kept.digest == record.digest:
                same[i] = _combined(kept, record)
                break
        else:
            same.append(record)
    return [r for group in merged.values() for r in group]


def _combined(kept: ImageRecord, new: ImageRecord) -> ImageRecord:
    """`kept` completed by what `new` knows; the stronger evidence of the two stands."""
    seen_by = tuple(dict.fromkeys(kept.seen_by + new.seen_by))
    digest = kept.digest or new.digest
    return dataclasses.replace(
        kept,
        reference=kept.reference.with_digest(digest),
        image_id=kept.image_id or new.image_id,
        pushed_at=kept.pushed_at or new.pushed_at,
        created=kept.created or new.created,
        platform=kept.platform or new.platform,
        labels=kept.labels or new.labels,
        basis=min(kept.basis, new.basis, key=_BASIS_ORDER.index),
        seen_by=seen_by,
        manifests=kept.manifests or new.manifests,
        registry_digest=kept.registry_digest or new.registry_digest,
        verification=(
            new.verification if kept.verification is Verification.NOT_CHECKED else kept.verification
        ),
        note="; ".join(dict.fromkeys(n for n in (kept.note, new.note) if n)) or None,
    )


_BASIS_ORDER = (Basis.LABEL, Basis.PROCESS, Basis.WINDOW_ONLY, Basis.AMBIGUOUS)


def _settle_digests(
    records: list[ImageRecord], registry: RegistryFactory, verify: bool, deadline: float | None
) -> list[ImageRecord]:
    wanted = [r for r in records if r.pushed and (verify or r.digest is None)]
    if not wanted:
        return records
    from container_mapping.registry import verify_records

    checked = verify_records(wanted, registry(), deadline)
    by_identity = {id(old): new for old, new in zip(wanted, checked)}
    return [by_identity.get(id(r), r) for r in records]


def _with_platforms(
    records: list[ImageRecord], registry: RegistryFactory, deadline: float | None
) -> tuple[list[ImageRecord], list[str]]:
    """Pushed indexes with each platform's manifest, as the registry holds them.

    Only records whose digest the registry was asked for can be indexes (see
    `RegistryClient.index_manifests`); with no such record, no client is made.
    """
    asked = [r for r in records if r.pushed and r.digest and r.registry_digest]
    if not asked:
        return records, []
    client = registry()
    if not hasattr(client, "index_manifests"):
        return records, []
    from container_mapping.http import TransportError

    out, warnings = [], []
    for record in records:
        if record in asked:
            try:
                manifests = client.index_manifests(record.reference, deadline)
            except (Error, TransportError) as err:
                warnings.append(f"could not list the platforms of {record.reference}: {err}")
                manifests = ()
            record = dataclasses.replace(record, manifests=manifests) if manifests else record
        out.append(record)
    return out, warnings


def _engine_version(found: Sequence[Collection]) -> str | None:
    return next((c.engine_version for c in found if c.engine_version), None)

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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from container_mapping.attribution import attribute
from container_mapping.collect.interface import Collection, Collector
from container_mapping.model import (
    Attribution,
    CollectionWindow,
    ImageRecord,
    MappingReport,
    PipelineContext,
)

if TYPE_CHECKING:
    from container_mapping.registry import DigestSource

RegistryFactory = Callable[[], "DigestSource"]


def docker_collectors(environ: Mapping[str, str]) -> list[Collector]:
    """The collectors for this host: the Docker engine found as the docker CLI finds it."""
    from container_mapping.collect.docker import DockerCollector

    return [DockerCollector.from_environment(environ)]


def registry_factory(environ: Mapping[str, str]) -> RegistryFactory:
    """A registry client made on first need, with the Docker config's credentials."""

    def make() -> DigestSource:
        from container_mapping.registry import RegistryClient

        return RegistryClient(environ=environ)

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
    found = [c.collect(window, deadline, on_push) for c in collectors]
    records = [_attributed(r, context) for c in found for r in c.records]
    ours = [r for r in records if r.attribution is not Attribution.OTHER_RUN]
    return MappingReport(
        window=window,
        pipeline=context,
        images=tuple(_settle_digests(ours, registry, verify, deadline)),
        skipped=tuple(r for r in records if r.attribution is Attribution.OTHER_RUN),
        engine_version=_engine_version(found),
        warnings=tuple(w for c in found for w in c.warnings),
    )


def _attributed(record: ImageRecord, context: PipelineContext) -> ImageRecord:
    verdict, evidence = attribute(record.labels, context)
    return dataclasses.replace(record, attribution=verdict, attribution_evidence=evidence)


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


def _engine_version(found: Sequence[Collection]) -> str | None:
    return next((c.engine_version for c in found if c.engine_version), None)

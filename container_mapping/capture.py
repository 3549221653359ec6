"""Capture: run the collectors, judge attribution, settle digests, build the report.

This is the whole of what `collect` and post-job share. The registry is asked only where it
must be (a record without a digest), unless `verify` asks it for every pushed record.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence

from container_mapping.attribution import attribute
from container_mapping.collect.interface import Collection, Collector
from container_mapping.context import from_environment
from container_mapping.model import (
    Attribution,
    CollectionWindow,
    ImageRecord,
    MappingReport,
    PipelineContext,
)

logger = logging.getLogger(__name__)


def capture(
    window: CollectionWindow,
    *,
    environ: Mapping[str, str],
    verify: bool = False,
    deadline: float | None = None,
    collectors: Sequence[Collector] | None = None,
) -> MappingReport:
    """Everything the job pushed in `window`, attributed and with digests settled."""
    context = from_environment(environ)
    if collectors is None:
        from container_mapping.collect.docker import DockerCollector

        collectors = [DockerCollector.from_environment(environ)]
    found = [c.collect(window, deadline) for c in collectors]
    for collection in found:
        for warning in collection.warnings:
            logger.warning("%s", warning)
    records = [_attributed(r, context) for c in found for r in c.records]
    ours = [r for r in records if r.attribution is not Attribution.OTHER_RUN]
    return MappingReport(
        window=window,
        pipeline=context,
        images=tuple(_settle_digests(ours, environ, verify, deadline)),
        skipped=tuple(r for r in records if r.attribution is Attribution.OTHER_RUN),
        engine_version=_engine_version(found),
    )


def _attributed(record: ImageRecord, context: PipelineContext) -> ImageRecord:
    verdict, evidence = attribute(record.labels, context)
    return dataclasses.replace(record, attribution=verdict, attribution_evidence=evidence)


def _settle_digests(
    records: list[ImageRecord], environ: Mapping[str, str], verify: bool, deadline: float | None
) -> list[ImageRecord]:
    wanted = [r for r in records if r.pushed and (verify or r.digest is None)]
    if not wanted:
        return records
    from container_mapping.registry import RegistryClient, verify_records

    started = time.monotonic()
    checked = verify_records(wanted, RegistryClient(environ=environ), deadline)
    logger.debug(
        "asked the registries about %d records in %.1f ms",
        len(wanted), (time.monotonic() - started) * 1000,
    )  # fmt: skip
    by_identity = {id(old): new for old, new in zip(wanted, checked)}
    return [by_identity.get(id(r), r) for r in records]


def _engine_version(found: Sequence[Collection]) -> str | None:
    return next((c.engine_version for c in found if c.engine_version), None)

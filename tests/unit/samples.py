"""Reports and records for the sinks' and Defender's tests: fixed digests, one fixed time."""

from __future__ import annotations

from datetime import datetime, timezone

from container_mapping.http import RetryPolicy
from container_mapping.model import CollectionWindow, ImageRecord, MappingReport, PipelineContext
from container_mapping.reference import ImageReference

DIGEST = "sha256:" + "d" * 64
IMAGE_ID = "sha256:" + "e" * 64
WHEN = datetime(2026, 11, 27, 9, 20, 59, 123456, tzinfo=timezone.utc)
FAST = RetryPolicy(attempts=3, backoff=0.01)


def record(text: str, pushed: bool = True, created: datetime | None = WHEN) -> ImageRecord:
    return ImageRecord(
        ImageReference.parse(text), IMAGE_ID, pushed, created=created, pushed_at=WHEN
    )


def report(*records: ImageRecord, context: PipelineContext | None = None) -> MappingReport:
    window = CollectionWindow(WHEN, WHEN)
    return MappingReport(
        window, context or PipelineContext(), tuple(records), engine_version="27.3.1"
    )


def oidc_token(deadline: float | None) -> str:
    """A token provider for sinks: what the OIDC client would hand them."""
    return "oidc-from-test"

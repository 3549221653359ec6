"""The collector extension point: one small protocol, one result type.

A collector looks at one source (the Docker engine, podman's event log, build metadata
files) and returns every image pushed or built inside a time window. It does not judge
attribution or ask registries: `capture.py` does that once for all collectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from container_mapping.model import CollectionWindow, ImageRecord


@dataclass(frozen=True)
class Collection:
    """What one collector found, and what it could tell about its source."""

    records: tuple[ImageRecord, ...]
    engine_version: str | None = None
    warnings: tuple[str, ...] = ()


class Collector(Protocol):
    """Finds the images a job built or pushed inside a window."""

    name: str

    def collect(self, window: CollectionWindow, deadline: float | None = None) -> Collection:
        """Return the images; raise `CollectorError` or `EngineUnavailable` when it cannot."""
        ...

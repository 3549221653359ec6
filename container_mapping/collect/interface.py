"""The collector extension point: one small protocol, one result type.

A collector looks at one source (the Docker engine, podman's event log, build metadata
files) and returns every image pushed or built inside a time window. It does not judge
attribution or ask registries: `capture.py` does that once for all collectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from container_mapping.model import CollectionWindow, ImageRecord
from container_mapping.reference import ImageReference


@dataclass(frozen=True)
class Pusher:
    """A push client seen running (by the recorder), and the job its environment names."""

    references: frozenset[ImageReference]  # what it was asked to push, without digests
    job_id: str
    run_id: str


@dataclass(frozen=True)
class Collection:
    """What one collector found, and what it could tell about its source."""

    records: tuple[ImageRecord, ...]
    engine_version: str | None = None
    warnings: tuple[str, ...] = ()
    pushers: tuple[Pusher, ...] | None = None  # None: nobody watched the push clients


class Collector(Protocol):
    """Finds the images a job built or pushed inside a window."""

    name: str

    def collect(
        self,
        window: CollectionWindow,
        deadline: float | None = None,
        on_push: Callable[[], None] | None = None,
    ) -> Collection:
        """Return the images; raise `EngineUnavailable` or an `Error` when it cannot.

        Call `on_push` once, as early as the source shows that something was pushed.
        """
        ...

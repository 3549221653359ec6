"""The build metadata collector: pushes that BuildKit and kaniko wrote down in the job's files.

A file is a claim, not proof (any step can write one, and BuildKit writes its metadata file for
builds that were never pushed): each claimed digest is confirmed by asking the registry for
that manifest in that repository (`HEAD /v2/<repository>/manifests/<digest>`). What the
registry holds is reported with that digest; what it does not hold is left out. See
`files.py` for where the files are looked for and how a pipeline narrows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from container_mapping.collect.files import Claim, JobFiles
from container_mapping.collect.interface import Collection
from container_mapping.errors import ApiError, RegistryError
from container_mapping.model import CollectionWindow, ImageRecord
from container_mapping.reference import ImageReference

if TYPE_CHECKING:
    from container_mapping.registry import DigestSource

SOURCE = "metadata-file"


class MetadataCollector:
    """Finds pushes in BuildKit metadata files and kaniko's name-with-digest files."""

    name = SOURCE

    def __init__(self, files: JobFiles, registry: Callable[[], DigestSource]) -> None:
        self.files = files
        self.registry = registry

    def collect(
        self,
        window: CollectionWindow,
        deadline: float | None = None,
        on_push: Callable[[], None] | None = None,
    ) -> Collection:
        found = self.files.scan(window, deadline)
        if not found.claims:
            return Collection((), warnings=found.warnings)
        if on_push is not None:
            on_push()
        registry = self.registry()
        records = [
            _record(name, claim)
            for claim in found.claims
            for name in claim.names
            if held(registry, name, claim.digest, deadline)
        ]
        return Collection(tuple(records), warnings=found.warnings)


def held(registry: DigestSource, name: ImageReference, digest: str, deadline: float | None) -> bool:
    """Whether the registry holds manifest `digest` in `name`'s repository."""
    by_digest = ImageReference(name.registry, name.repository, None, digest)
    try:
        return registry.resolve_digest(by_digest, deadline) == digest
    except (RegistryError, ApiError):  # ApiError: TransportError, without importing http
        return False


def _record(name: ImageReference, claim: Claim) -> ImageRecord:
    return ImageRecord(
        name.with_digest(claim.digest),
        None,
        True,
        source=SOURCE,
        registry_digest=claim.digest,
        note=f"read from a {claim.kind} file; the registry holds this manifest",
    )

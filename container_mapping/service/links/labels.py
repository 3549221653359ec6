"""What an image's own labels say about where it came from: repository, commit, run.

Images the task never saw (built elsewhere, pushed by BuildKit) still carry labels: OCI's
`org.opencontainers.image.source`/`revision`, and the `com.azure.dev.image.*` set Azure
Pipelines' Docker task writes. They are a claim made by whoever built the image, so the service
stores them as `label` evidence, never as an observed push.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from container_mapping.attribution import (
    AZURE_PREFIX,
    AZURE_REPOSITORY_URI,
    AZURE_REVISION,
    BUILD_URI,
    COLLECTION_URI,
    OCI_REVISION,
    OCI_SOURCE,
)

BUILD_URI_PREFIX = "vstfs:///Build/Build/"
BUILD_NUMBER = AZURE_PREFIX + "build.buildnumber"
MAX_VALUE = 512


@dataclass(frozen=True)
class LabelClaims:
    repository: str | None = None
    commit: str | None = None
    run_id: str | None = None
    collection: str | None = None

    @property
    def any(self) -> bool:
        return any((self.repository, self.commit, self.run_id, self.collection))


def claims(labels: Mapping[str, str]) -> LabelClaims:
    """Azure Pipelines' labels first (they name the run), then OCI's."""
    build_uri = _get(labels, BUILD_URI) or ""
    run_id = build_uri[len(BUILD_URI_PREFIX) :] if build_uri.startswith(BUILD_URI_PREFIX) else ""
    commit = _get(labels, AZURE_REVISION) or _get(labels, OCI_REVISION)
    return LabelClaims(
        repository=_get(labels, AZURE_REPOSITORY_URI) or _get(labels, OCI_SOURCE),
        commit=commit.lower() if commit else None,
        run_id=run_id if run_id.isdigit() else None,
        collection=_get(labels, COLLECTION_URI),
    )


def _get(labels: Mapping[str, str], key: str) -> str | None:
    value = labels.get(key)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:MAX_VALUE] if value else None

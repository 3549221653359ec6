"""A pushed image index (a multi-platform image): each platform's manifest, from the registry.

The registry's answer to `HEAD …/manifests/<ref>` carries its media type; only an OCI image
index or a Docker manifest list is fetched (`GET`, at most `MAX_INDEX` bytes), its bytes are
checked against the digest asked for, and each entry with a platform becomes a
`PlatformManifest`. BuildKit's attestation manifests (platform `unknown/unknown`, annotated
`vnd.docker.reference.type: attestation-manifest`) are not platforms and are left out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from container_mapping.errors import RegistryError
from container_mapping.model import PlatformManifest
from container_mapping.reference import DIGEST_RE

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MAX_INDEX = 1024 * 1024
MAX_PLATFORMS = 64


def platforms(body: bytes, digest: str) -> tuple[PlatformManifest, ...]:
    """The platform manifests of the index `body`, which must hash to `digest`."""
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise RegistryError(f"the registry's index does not hash to {digest}")
    try:
        document = json.loads(body)
    except ValueError as err:
        raise RegistryError(f"the registry's index {digest} is not JSON") from err
    entries = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise RegistryError(f"the registry's index {digest} lists no manifests")
    found = [p for e in entries[:MAX_PLATFORMS] if (p := _platform_manifest(e)) is not None]
    return tuple(dict.fromkeys(found))


def _platform_manifest(entry: Any) -> PlatformManifest | None:
    if not isinstance(entry, dict):
        return None
    digest, platform = entry.get("digest"), entry.get("platform")
    annotations = entry.get("annotations")
    if isinstance(annotations, dict) and "vnd.docker.reference.type" in annotations:
        return None
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        return None
    if not isinstance(platform, dict):
        return None
    parts = [platform.get(k) for k in ("os", "architecture", "variant")]
    names = [str(p) for p in parts if isinstance(p, str) and p]
    if len(names) < 2 or names[:2] == ["unknown", "unknown"]:
        return None
    return PlatformManifest(digest, "/".join(names))

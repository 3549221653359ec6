"""The buildah collector: pushes that leave no event, found by their digest file.

`buildah push` (and `podman push` run by buildah's library) emits no event. What it leaves is
`--digestfile`: the pushed manifest's digest, with no name. The name comes from buildah's
storage: images created inside the window whose names are registry references are the
candidates, and a candidate is reported when the registry's digest for its tag is one of the
digests the job's files hold. No digest file, no record: a tag in storage alone is no push.

Storage is read from its own files (`<root>/<driver>-images/images.json`), never by running
buildah: the default roots (`/var/lib/containers/storage`, or rootless
`~/.local/share/containers/storage`), the `graphroot` of the system's or this user's
storage.conf, and roots a pipeline names in `ContainerMapping.StorageRoots` if they lie inside
the job's directories (`buildah --root` there). Bounded: `MAX_INDEX` bytes per index,
`MAX_CANDIDATES` names asked about.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from container_mapping.collect.conf import table_values
from container_mapping.collect.files import JobFiles, scan_roots
from container_mapping.collect.interface import Collection
from container_mapping.errors import ApiError, Error, RegistryError
from container_mapping.model import CollectionWindow, ImageRecord, parse_time
from container_mapping.reference import DIGEST_RE, ImageReference

if TYPE_CHECKING:
    from container_mapping.registry import DigestSource

SOURCE = "digest-file"  # what saw the push: a digest file, named through the storage
STORAGE_ENV = "CONTAINERMAPPING_STORAGEROOTS"
MAX_INDEX = 16 * 1024 * 1024
MAX_CANDIDATES = 50
_DRIVERS = ("overlay", "vfs", "btrfs", "zfs", "devmapper", "aufs")


class BuildahCollector:
    """Names the digests of the job's digest files through buildah's storage and the registry."""

    name = SOURCE

    def __init__(
        self, files: JobFiles, storage: list[Path], registry: Callable[[], DigestSource]
    ) -> None:
        self.files = files
        self.storage = storage
        self.registry = registry

    @classmethod
    def from_environment(
        cls, files: JobFiles, environ: Mapping[str, str], registry: Callable[[], DigestSource]
    ) -> BuildahCollector:
        return cls(files, storage_roots(environ), registry)

    def collect(
        self,
        window: CollectionWindow,
        deadline: float | None = None,
        on_push: Callable[[], None] | None = None,
    ) -> Collection:
        digests = self.files.scan(window, deadline).digests
        if not digests:
            return Collection(())
        candidates = list(_candidates(self.storage, window))[:MAX_CANDIDATES]
        if not candidates:
            return Collection(())
        registry = self.registry()
        records = []
        for ref, image_id in candidates:
            digest = _registry_digest(registry, ref, deadline)
            if digest in digests:
                if on_push is not None:
                    on_push()
                records.append(_record(ref, image_id, digest))
        return Collection(tuple(records))


def storage_roots(environ: Mapping[str, str], uid: int | None = None) -> list[Path]:
    uid = os.getuid() if uid is None else uid
    roots = [Path("/var/lib/containers/storage")]
    confs = [Path("/usr/share/containers/storage.conf"), Path("/etc/containers/storage.conf")]
    if uid != 0:
        home = _home(uid)
        roots = [home / ".local/share/containers/storage"] if home else []
        confs = [home / ".config/containers/storage.conf"] if home else []
    root = table_values(confs, "storage", ("graphroot",))["graphroot"]
    if root:
        roots.append(Path(root))
    asked = {**environ, "CONTAINERMAPPING_METADATAPATHS": environ.get(STORAGE_ENV, "")}
    if asked["CONTAINERMAPPING_METADATAPATHS"]:
        roots.extend(scan_roots(asked)[0])
    return list(dict.fromkeys(roots))


def _home(uid: int) -> Path | None:
    import pwd

    try:
        return Path(pwd.getpwuid(uid).pw_dir)
    except KeyError:
        return None


def _candidates(
    roots: Iterable[Path], window: CollectionWindow
) -> Iterable[tuple[ImageReference, str | None]]:
    seen = set()
    for root in roots:
        for driver in _DRIVERS:
            for image in _index(root / f"{driver}-images" / "images.json"):
                for candidate in _named(image, window):
                    if candidate[0] not in seen:
                        seen.add(candidate[0])
                        yield candidate


def _index(path: Path) -> list[Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INDEX + 1)
    except OSError:
        return []
    if len(data) > MAX_INDEX:
        return []
    try:
        images = json.loads(data)
    except ValueError:
        return []
    return images if isinstance(images, list) else []


def _named(image: Any, window: CollectionWindow) -> list[tuple[ImageReference, str | None]]:
    if not isinstance(image, dict):
        return []
    try:
        created = parse_time(str(image.get("created") or ""))
    except Error:
        return []
    if not window.since <= created <= window.until:
        return []
    image_id = str(image.get("id") or "")
    full_id = f"sha256:{image_id}" if DIGEST_RE.fullmatch(f"sha256:{image_id}") else None
    found = []
    for name in (image.get("names") or [])[:20]:
        try:
            ref = ImageReference.parse(str(name))
        except Error:
            continue
        if ref.tag is not None and ref.digest is None and not ref.registry.startswith("localhost"):
            found.append((ref, full_id))
    return found


def _registry_digest(
    registry: DigestSource, ref: ImageReference, deadline: float | None
) -> str | None:
    try:
        return registry.resolve_digest(ref, deadline)
    except (RegistryError, ApiError):  # ApiError: TransportError, without importing http
        return None


def _record(ref: ImageReference, image_id: str | None, digest: str) -> ImageRecord:
    note = (
        "a digest file written in the job (buildah/podman --digestfile) holds the digest the "
        "registry holds for this tag"
    )
    return ImageRecord(
        ref.with_digest(digest),
        image_id,
        True,
        source=SOURCE,
        registry_digest=digest,
        note=note,
    )

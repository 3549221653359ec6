"""Build and push tiny `FROM scratch` images on the real engine, for tests and benchmarks."""

from __future__ import annotations

import io
import tarfile
import uuid
from typing import Any


def build(client: Any, tag: str, content: str | None = None, labels: dict[str, str] | None = None) -> str:
    """Build a one-file scratch image tagged `tag`; return its image id."""
    dockerfile = "FROM scratch\nCOPY payload /payload\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("payload", content or uuid.uuid4().hex)):
            raw = data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    buffer.seek(0)
    image, _ = client.images.build(fileobj=buffer, custom_context=True, tag=tag, labels=labels or {}, rm=True)
    return str(image.id)


def push(client: Any, reference: str) -> str:
    """Push `repo:tag`; return the manifest digest the push stream reported."""
    repository, tag = reference.rsplit(":", 1)
    digest = None
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push of {reference} failed: {line['error']}")
        digest = (line.get("aux") or {}).get("Digest", digest)
    if digest is None:
        raise RuntimeError(f"push of {reference} reported no digest")
    return str(digest)

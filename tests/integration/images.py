"""Build and push tiny `FROM scratch` images on the real engine, for tests and benchmarks."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Every image `image_archive` makes has this label, valued with a run id, to delete them by.
LABEL = "container-mapping.bench"


def build(
    client: Any, tag: str, content: str | None = None, labels: dict[str, str] | None = None
) -> str:
    """Build a one-file scratch image tagged `tag`; return its image id."""
    dockerfile = "FROM scratch\nCOPY payload /payload\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_file(tar, "Dockerfile", dockerfile.encode())
        _add_file(tar, "payload", (content or uuid.uuid4().hex).encode())
    buffer.seek(0)
    # Every payload differs, so the build cache never hits: skip looking, which on an engine
    # holding 10,000 images compares each of them (seconds a build).
    image, _ = client.images.build(
        fileobj=buffer, custom_context=True, tag=tag, labels=labels or {}, rm=True, nocache=True
    )
    return str(image.id)


def push(client: Any, reference: str, auth: dict[str, str] | None = None) -> str:
    """Push `repo:tag` (with `auth`, a `docker login`'s user and password); return the digest."""
    repository, tag = reference.rsplit(":", 1)
    digest = None
    stream = client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
    for line in stream:
        if "error" in line:
            raise RuntimeError(f"push of {reference} failed: {line['error']}")
        digest = (line.get("aux") or {}).get("Digest", digest)
    if digest is None:
        raise RuntimeError(f"push of {reference} reported no digest")
    return str(digest)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def image_archive(start: int, count: int, run: str, *, tagged: bool = True) -> bytes:
    """A `docker load` archive of `count` distinct images sharing one one-file layer.

    Untagged images load several times faster: the engine rewrites its whole tag store for
    every tag it adds or removes.
    """
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w") as layer:
        _add_file(layer, "payload", b"bench\n")
    layer_bytes = layer_buffer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    manifest = []
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add_file(tar, "layer/layer.tar", layer_bytes)
        for index in range(start, start + count):
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "created": "2026-01-01T00:00:00Z",
                    "config": {"Labels": {LABEL: run, "index": str(index)}},
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                }
            ).encode()
            name = hashlib.sha256(config).hexdigest() + ".json"
            _add_file(tar, name, config)
            tags = [f"bench/other-{run}:{index}"] if tagged else []
            manifest.append({"Config": name, "RepoTags": tags, "Layers": ["layer/layer.tar"]})
        _add_file(tar, "manifest.json", json.dumps(manifest).encode())
    return out.getvalue()


def load_untagged(docker_host: str, count: int, run: str, parts: int = 4) -> None:
    """Load `count` distinct untagged images labelled with `run`, `parts` archives at once.

    The engine loads archives side by side faster than one after the other, and the low-level
    call does not inspect each loaded image as the SDK's `images.load` does.
    """
    import docker

    def load(part: int) -> None:
        size = count // parts + (part < count % parts)
        start = part * (count // parts) + min(part, count % parts)
        client = docker.APIClient(base_url=docker_host, timeout=600)
        try:
            for line in client.load_image(image_archive(start, size, run, tagged=False), True):
                if "error" in line:
                    raise RuntimeError(f"docker load failed: {line['error']}")
        finally:
            client.close()

    with ThreadPoolExecutor(parts) as pool:
        list(pool.map(load, range(parts)))

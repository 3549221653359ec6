"""Push images and a two-platform index straight through a registry's distribution API.

The test writes the blobs and manifests itself, so it knows every digest the crawler must find,
and the registry that stores and serves them is the real one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Pushed:
    repository: str
    index: str | None = None
    children: dict[str, str] = field(default_factory=dict)  # "os/arch" -> manifest digest
    images: dict[str, str] = field(default_factory=dict)  # tag -> manifest digest
    attestation: str | None = None


class OciPusher:
    def __init__(self, registry: str, auth: tuple[str, str] | None = None) -> None:
        self.base = f"http://{registry}/v2"
        self.http = httpx.Client(timeout=30, auth=auth)

    def close(self) -> None:
        self.http.close()

    def blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        start = self.http.post(f"{self.base}/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = httpx.URL(self.base).join(start.headers["location"])
        done = self.http.put(
            location.copy_merge_params({"digest": digest}),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest

    def manifest(self, repository: str, target: str, body: bytes, media_type: str) -> str:
        answer = self.http.put(
            f"{self.base}/{repository}/manifests/{target}",
            content=body,
            headers={"Content-Type": media_type},
        )
        assert answer.status_code == 201, answer.text
        return digest_of(body)

    def image(
        self,
        repository: str,
        labels: dict[str, str],
        os: str = "linux",
        arch: str = "amd64",
        tag: str | None = None,
        variant: str | None = None,
    ) -> tuple[str, int]:
        """An image manifest (one layer, a config with `labels`); its digest and size."""
        layer = self.blob(repository, f"layer {repository} {os}/{arch} {labels}".encode())
        platform = {"os": os, "architecture": arch} | ({"variant": variant} if variant else {})
        config = canonical(
            platform | {"config": {"Labels": labels}, "rootfs": {"type": "layers",
                                                                 "diff_ids": [layer]}}
        )  # fmt: skip
        config_digest = self.blob(repository, config)
        manifest = canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": 10}],
        })  # fmt: skip
        digest = self.manifest(repository, tag or digest_of(manifest), manifest, OCI_MANIFEST)
        return digest, len(manifest)

    def index(self, repository: str, tag: str, labels: dict[str, str]) -> Pushed:
        """A two-platform index (amd64, arm64/v8) with a BuildKit attestation entry."""
        pushed = Pushed(repository)
        entries = []
        for arch, variant in (("amd64", None), ("arm64", "v8")):
            digest, size = self.image(repository, labels, arch=arch, variant=variant)
            pushed.children[f"linux/{arch}"] = digest
            platform = {"os": "linux", "architecture": arch} | (
                {"variant": variant} if variant else {}
            )
            entries.append(
                {"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": platform}
            )
        attestation, size = self.image(repository, {}, os="unknown", arch="unknown")
        pushed.attestation = attestation
        entries.append({
            "mediaType": OCI_MANIFEST, "digest": attestation, "size": size,
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                            "vnd.docker.reference.digest": pushed.children["linux/amd64"]},
        })  # fmt: skip
        body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        pushed.index = self.manifest(repository, tag, body, OCI_INDEX)
        return pushed

"""Crawl a registry through the OCI distribution API: what it holds, by digest, with labels.

Run on the operator's side (`container-mapping link registry`), with the credentials the Docker
CLI would use there. For each repository (from `--repository`, else the catalog, paged by its
`Link` header), each tag is asked for with the manifest `Accept` types; an index's children are
read one by one with their platforms (BuildKit's attestation entries are not images and are
skipped); each image's config blob gives its labels. Every fetched body is hashed and compared
with the digest it was asked for, so a registry cannot make us record a digest it did not serve.

Everything the registry answers is bounded: pages, repositories, tags, body sizes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from container_mapping import USER_AGENT
from container_mapping.errors import Error, RegistryError
from container_mapping.reference import DIGEST_RE, PATH_RE, TAG_RE
from container_mapping.registry import ACCEPT, base_url
from container_mapping.service.links.registry_auth import RegistryAuth

log = logging.getLogger(__name__)

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
ATTESTATION = "attestation-manifest"  # BuildKit's `vnd.docker.reference.type` annotation
BATCH_BYTES = 768 * 1024  # under the service's default 1 MiB body limit


@dataclass(frozen=True)
class Limits:
    pages: int = 1000
    page_size: int = 1000
    repositories: int = 10_000
    tags: int = 10_000
    children: int = 64
    page_bytes: int = 4 * 1024 * 1024
    manifest_bytes: int = 4 * 1024 * 1024
    config_bytes: int = 8 * 1024 * 1024
    labels: int = 256
    label_bytes: int = 4096
    timeout: float = 30.0


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None


@dataclass(frozen=True)
class Artifact:
    """One manifest a registry holds: an image, an index, or an index's platform child."""

    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...] = ()
    parent_digest: str | None = None
    platform: Platform | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        platform = self.platform
        return {
            "repository": self.repository,
            "digest": self.digest,
            "mediaType": self.media_type,
            "tags": list(self.tags),
            "parentDigest": self.parent_digest,
            "platform": None
            if platform is None
            else {"os": platform.os, "architecture": platform.architecture,
                  "variant": platform.variant},
            "labels": dict(self.labels),
        }  # fmt: skip


@dataclass(frozen=True)
class Crawl:
    registry: str
    repositories: tuple[str, ...]
    artifacts: tuple[Artifact, ...]
    crawled_at: datetime
    problems: tuple[str, ...] = ()
    skipped_attestations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self._body(list(self.repositories), [a.to_dict() for a in self.artifacts]) | {
            "problems": list(self.problems)
        }

    def batches(self, max_bytes: int = BATCH_BYTES) -> Iterator[dict[str, Any]]:
        """Bodies of whole repositories, each under `max_bytes` unless one repository is larger.

        The service replaces a repository with what one body says of it, so a repository is
        never split across two bodies.
        """
        by_repository: dict[str, list[dict[str, Any]]] = {r: [] for r in self.repositories}
        for artifact in self.artifacts:
            by_repository.setdefault(artifact.repository, []).append(artifact.to_dict())
        names: list[str] = []
        artifacts: list[dict[str, Any]] = []
        size = 0
        for name, found in by_repository.items():
            grows = len(json.dumps(found)) + len(name) + 8
            if names and size + grows > max_bytes:
                yield self._body(names, artifacts)
                names, artifacts, size = [], [], 0
            names.append(name)
            artifacts.extend(found)
            size += grows
        if names or not self.repositories:
            yield self._body(names, artifacts)

    def _body(self, names: list[str], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "crawledAt": self.crawled_at.isoformat().replace("+00:00", "Z"),
            "repositories": names,
            "artifacts": artifacts,
            "problems": [p for p in self.problems if p.split(":", 1)[0] in names],
        }


def registry_name(url: str) -> str:
    """`host[:port]` from `URL` given as `https://host`, `host:5000` or `host/`."""
    text = url.strip()
    parts = urllib.parse.urlsplit(text if "//" in text else f"//{text}")
    if not parts.netloc or parts.path.strip("/"):
        raise RegistryError(f"{url!r} is not a registry address: give host[:port] or its URL")
    return parts.netloc.lower()


class Crawler:
    """One registry, one HTTP client, tokens cached per scope."""

    def __init__(
        self,
        registry: str,
        *,
        limits: Limits = Limits(),
        environ: Mapping[str, str] = os.environ,
        docker_config_dir: str | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits
        self._base = base_url(registry, environ)
        auth = RegistryAuth(registry, environ, docker_config_dir, limits.timeout)
        self._http = httpx.Client(
            auth=auth,
            timeout=limits.timeout,
            follow_redirects=True,
            max_redirects=3,
            headers={"User-Agent": USER_AGENT},
            trust_env=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Crawler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def crawl(self, repositories: Sequence[str] = ()) -> Crawl:
        """Each repository read whole, or named in `problems` and left out (not replaced)."""
        names = tuple(repositories) or tuple(self.catalog())
        done: list[str] = []
        artifacts: list[Artifact] = []
        problems: list[str] = []
        skipped = 0
        for name in names:
            try:
                found, attestations = self.repository(name)
            except RegistryError as err:
                problems.append(f"{name}: {err}")
                continue
            done.append(name)
            artifacts.extend(found)
            skipped += attestations
        now = datetime.now(timezone.utc)
        return Crawl(self.registry, tuple(done), tuple(artifacts), now, tuple(problems), skipped)

    def catalog(self) -> Iterator[str]:
        count = 0
        for page in self._pages(f"{self._base}/v2/_catalog?n={self.limits.page_size}"):
            for name in _strings(page.get("repositories")):
                if not PATH_RE.fullmatch(name):
                    log.warning("the catalog names an invalid repository; skipped")
                    continue
                count += 1
                if count > self.limits.repositories:
                    raise RegistryError(f"more than {self.limits.repositories} repositories")
                yield name

    def tags(self, repository: str) -> list[str]:
        tags: list[str] = []
        url = f"{self._base}/v2/{_check_repository(repository)}/tags/list"
        for page in self._pages(f"{url}?n={self.limits.page_size}"):
            tags.extend(t for t in _strings(page.get("tags")) if TAG_RE.fullmatch(t))
            if len(tags) > self.limits.tags:
                raise RegistryError(f"{repository} has more than {self.limits.tags} tags")
        return tags

    def repository(self, repository: str) -> tuple[list[Artifact], int]:
        """Every manifest the repository's tags reach, and how many attestations were skipped."""
        by_digest: dict[str, list[str]] = {}
        manifests: dict[str, tuple[str, dict[str, Any]]] = {}
        for tag in self.tags(repository):
            digest, media_type, body = self._manifest(repository, tag)
            by_digest.setdefault(digest, []).append(tag)
            manifests[digest] = (media_type, body)
        artifacts: list[Artifact] = []
        skipped = 0
        for digest, tags in by_digest.items():
            media_type, body = manifests[digest]
            top = self._artifact(repository, digest, media_type, body, tuple(sorted(tags)), None)
            artifacts.append(top)
            if media_type in INDEX_TYPES:
                children, attestations = self._children(repository, digest, body)
                artifacts.extend(children)
                skipped += attestations
        return artifacts, skipped

    def _children(
        self, repository: str, index_digest: str, index: Mapping[str, Any]
    ) -> tuple[list[Artifact], int]:
        entries = [e for e in _dicts(index.get("manifests"))][: self.limits.children]
        children, skipped = [], 0
        for entry in entries:
            annotations = entry.get("annotations")
            if isinstance(annotations, dict) and (
                annotations.get("vnd.docker.reference.type") == ATTESTATION
            ):
                skipped += 1
                continue
            digest = str(entry.get("digest") or "")
            if not DIGEST_RE.fullmatch(digest):
                continue
            got, media_type, body = self._manifest(repository, digest)
            if media_type in INDEX_TYPES:
                continue  # nested indexes: not followed, to keep the crawl bounded
            platform = _platform(entry.get("platform"))
            children.append(
                self._artifact(repository, got, media_type, body, (), index_digest, platform)
            )
        return children, skipped

    def _artifact(
        self,
        repository: str,
        digest: str,
        media_type: str,
        body: Mapping[str, Any],
        tags: tuple[str, ...],
        parent: str | None,
        platform: Platform | None = None,
    ) -> Artifact:
        labels: Mapping[str, str] = {}
        if media_type not in INDEX_TYPES:
            labels, config_platform = self._config(repository, body)
            platform = platform or config_platform
        return Artifact(repository, digest, media_type, tags, parent, platform, labels)

    def _manifest(self, repository: str, target: str) -> tuple[str, str, dict[str, Any]]:
        url = f"{self._base}/v2/{repository}/manifests/{target}"
        response, raw = self._get(url, ACCEPT, self.limits.manifest_bytes)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if DIGEST_RE.fullmatch(target) and digest != target:
            raise RegistryError(f"{repository}@{target} answered a manifest of digest {digest}")
        body = _json_object(raw, f"manifest {repository}:{target}")
        media_type = str(body.get("mediaType") or response.headers.get("content-type", ""))
        return digest, media_type.split(";")[0].strip(), body

    def _config(
        self, repository: str, manifest: Mapping[str, Any]
    ) -> tuple[dict[str, str], Platform | None]:
        config = manifest.get("config")
        digest = str(config.get("digest") or "") if isinstance(config, dict) else ""
        if not DIGEST_RE.fullmatch(digest):
            return {}, None
        url = f"{self._base}/v2/{repository}/blobs/{digest}"
        _, raw = self._get(url, "*/*", self.limits.config_bytes)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
            raise RegistryError(f"{repository}: config blob {digest} does not match its digest")
        blob = _json_object(raw, f"config blob of {repository}")
        inner = blob.get("config")
        labels = inner.get("Labels") if isinstance(inner, dict) else None
        platform = None
        if isinstance(blob.get("os"), str) and isinstance(blob.get("architecture"), str):
            variant = blob.get("variant")
            platform = Platform(
                blob["os"], blob["architecture"], variant if isinstance(variant, str) else None
            )
        return self._bounded_labels(labels), platform

    def _bounded_labels(self, labels: object) -> dict[str, str]:
        if not isinstance(labels, dict):
            return {}
        limit, size = self.limits.labels, self.limits.label_bytes
        kept = {
            str(k)[:size]: str(v)[:size]
            for k, v in labels.items()
            if isinstance(k, str) and isinstance(v, str)
        }
        return dict(sorted(kept.items())[:limit])

    def _pages(self, url: str) -> Iterator[dict[str, Any]]:
        for _ in range(self.limits.pages):
            response, raw = self._get(url, "application/json", self.limits.page_bytes)
            yield _json_object(raw, f"page {urllib.parse.urlsplit(url).path}")
            following = next_link(response.headers.get("link", ""), url)
            if following is None:
                return
            if _origin(following) != _origin(url):
                raise RegistryError("the registry's Link header points to another host")
            url = following
        raise RegistryError(f"more than {self.limits.pages} pages")

    def _get(self, url: str, accept: str, limit: int) -> tuple[httpx.Response, bytes]:
        try:
            with self._http.stream("GET", url, headers={"Accept": accept}) as response:
                _check(response, url, self.registry)
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > limit:
                        raise RegistryError(f"{_path(url)} is larger than {limit} bytes")
                return response, bytes(raw)
        except httpx.HTTPError as err:
            raise RegistryError(f"could not read {_path(url)} of {self.registry}: {err}") from err
        except Error:
            raise


def next_link(header: str, base: str) -> str | None:
    """The `rel="next"` target of a `Link` header, resolved against `base` (it may be relative)."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        target = target.strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        rels = [p.strip() for p in params.split(";")]
        if any(r.replace(" ", "") in ('rel="next"', "rel=next") for r in rels):
            return urllib.parse.urljoin(base, target[1:-1])
    return None


def _check(response: httpx.Response, url: str, registry: str) -> None:
    status = response.status_code
    if status == 401:
        raise RegistryError(
            f"401 from registry {registry} for {_path(url)}: run `docker login {registry}` "
            "with an account that may read it"
        )
    if status == 403:
        raise RegistryError(f"403 from registry {registry} for {_path(url)}: no read rights")
    if status == 404:
        raise RegistryError(f"registry {registry} has no {_path(url)} (HTTP 404)")
    if not 200 <= status < 300:
        raise RegistryError(f"registry {registry} answered HTTP {status} for {_path(url)}")


def _check_repository(name: str) -> str:
    if not PATH_RE.fullmatch(name):
        raise RegistryError(f"invalid repository name {name!r}")
    return name


def _platform(value: object) -> Platform | None:
    if not isinstance(value, dict):
        return None
    os_name, arch = value.get("os"), value.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    variant = value.get("variant")
    return Platform(os_name, arch, variant if isinstance(variant, str) else None)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as err:
        raise RegistryError(f"the {what} is not JSON") from err
    if not isinstance(value, dict):
        raise RegistryError(f"the {what} is not a JSON object")
    return value


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.lower()

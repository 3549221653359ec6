"""Ask a registry which manifest digest a tag points at.

The protocol is the OCI distribution API: `HEAD /v2/<repo>/manifests/<tag>` with an `Accept`
listing the Docker v2 and OCI manifest and index types (without them a registry may convert to
schema1 and answer another digest), answering a 401 as `auth.py` does. Redirects are followed
a few times, and credentials never follow one to another host.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from container_mapping.credentials import DockerCredentials, default_config_dir
from container_mapping.errors import RegistryError
from container_mapping.http import MAX_BODY, HttpClient, Response, TransportError, redact
from container_mapping.model import PlatformManifest
from container_mapping.reference import DIGEST_RE, ImageReference
from container_mapping.registry.address import INSECURE_ENV, base_url
from container_mapping.registry.auth import RegistryAuth, pull_scope

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class RegistryClient:
    """Resolves tags to manifest digests; one instance caches tokens for its whole life."""

    def __init__(
        self,
        http: HttpClient | None = None,
        *,
        environ: Mapping[str, str] = os.environ,
        docker_config_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._environ = environ
        self._http = http or HttpClient(environ=environ)
        config_dir = Path(docker_config_dir) if docker_config_dir else default_config_dir(environ)
        self.credentials = DockerCredentials(config_dir, environ)
        self._auth = RegistryAuth(self._http, self.credentials, environ)
        self._media_types: dict[tuple[str, str, str], str] = {}  # (registry, repo, digest)

    def resolve_digest(self, ref: ImageReference, deadline: float | None = None) -> str:
        """The digest the registry holds for `ref`'s tag (or digest); `RegistryError` if unknown."""
        target = ref.tag or ref.digest
        if target is None:
            raise RegistryError(f"{ref} has neither tag nor digest to ask the registry about")
        if deadline is not None and time.monotonic() >= deadline:
            raise RegistryError(f"the time budget ran out before registry {ref.registry} was asked")
        url = f"{base_url(ref.registry, self._environ)}/v2/{ref.repository}/manifests/{target}"
        answer = self._fetch("HEAD", url, ref, deadline)
        digest = answer.headers.get("docker-content-digest", "").strip()
        if not DIGEST_RE.fullmatch(digest):
            log.debug("%s gave no usable Docker-Content-Digest; hashing the manifest", redact(url))
            answer = self._fetch("GET", url, ref, deadline)
            digest = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        self._media_types[(ref.registry, ref.repository, digest)] = media_type
        return digest

    def index_manifests(
        self, ref: ImageReference, deadline: float | None = None
    ) -> tuple[PlatformManifest, ...]:
        """Each platform's manifest when `ref`'s digest is an index the registry named so.

        Asks only about digests this client resolved (their media type is known then), and
        again only for an index: the Docker engine's own pushes, whose digest the engine
        knows, are single-platform manifests and cost nothing here.
        """
        from container_mapping.registry.index import INDEX_TYPES, MAX_INDEX, platforms

        if ref.digest is None:
            return ()
        key = (ref.registry, ref.repository, ref.digest)
        if self._media_types.get(key) not in INDEX_TYPES:
            return ()
        url = f"{base_url(ref.registry, self._environ)}/v2/{ref.repository}/manifests/{ref.digest}"
        answer = self._fetch("GET", url, ref, deadline, max_body=MAX_INDEX)
        if answer.truncated:
            raise RegistryError(f"the index {ref.digest} is larger than {MAX_INDEX} bytes")
        return platforms(answer.body, ref.digest)

    def _fetch(
        self,
        method: str,
        url: str,
        ref: ImageReference,
        deadline: float | None,
        max_body: int = MAX_BODY,
    ) -> Response:
        scope = pull_scope(ref)
        try:
            response = self._send(
                method, url, self._auth.cached(ref.registry, scope), deadline, max_body
            )
            if response.status == 401:
                challenge = response.headers.get("www-authenticate", "")
                authorization = self._auth.answer(ref.registry, scope, challenge, deadline)
                response = self._send(method, url, authorization, deadline, max_body)
        except TransportError as err:
            raise RegistryError(
                f"could not reach registry {ref.registry}: {err}; check the agent's network and "
                f"proxy, or list a plain-HTTP registry in {INSECURE_ENV}"
            ) from err
        if response.status == 401:
            raise self._auth.rejected(ref.registry, scope, deadline)
        _check_status(response, ref)
        return response

    def _send(
        self,
        method: str,
        url: str,
        authorization: str | None,
        deadline: float | None,
        max_body: int = MAX_BODY,
    ) -> Response:
        headers = {"Accept": ACCEPT}
        if authorization:
            headers["Authorization"] = authorization
        response = self._http.request(
            method, url, headers=headers, deadline=deadline, max_body=max_body
        )
        for _ in range(MAX_REDIRECTS):
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                break
            target = urllib.parse.urljoin(url, location)
            if _origin(target) != _origin(url):
                headers.pop("Authorization", None)  # never hand our credentials to another host
            url = target
            response = self._http.request(
                method, url, headers=headers, deadline=deadline, max_body=max_body
            )
        return response


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def _check_status(response: Response, ref: ImageReference) -> None:
    status = response.status
    target = f"{ref.repository}:{ref.tag}" if ref.tag else f"{ref.repository}@{ref.digest}"
    if response.ok:
        return
    if status == 403:
        raise RegistryError(
            f"403 from registry {ref.registry} for repository {ref.repository}: the "
            "credentials in use lack pull rights; grant them read access to the repository"
        )
    if status == 404:
        raise RegistryError(
            f"registry {ref.registry} has no manifest {target} (HTTP 404): the push did not "
            "complete, or the tag was deleted since"
        )
    raise RegistryError(f"registry {ref.registry} answered HTTP {status} for {target}")

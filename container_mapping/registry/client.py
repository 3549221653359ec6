"""Ask a registry which manifest digest a tag points at, and check pushed images against it.

The engine's `RepoDigests` says what *this* engine pushed; the mapping service links by what
the registry holds. A tag pushed again by another job, a push that never finished, or a
registry that rewrote the manifest show only when the registry itself is asked (`--verify`).

The protocol is the OCI distribution API with Docker's authentication challenge:
- `HEAD /v2/<repo>/manifests/<tag>` with an `Accept` listing the Docker v2 and OCI manifest
  and index types: without them a registry may convert to schema1 and answer another digest.
- A 401 carries `WWW-Authenticate`: `Basic`, or `Bearer` naming a token service (realm) that
  hands out a token scoped to `repository:<repo>:pull`.
- Credentials come from the Docker config that `docker login` wrote on the agent, helpers
  included, so whatever could push the image can read its digest too.

Nothing here puts a password, a token or an Authorization header into a message or a log.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from container_mapping.credentials import (
    HUB_REGISTRY,
    Credentials,
    DockerCredentials,
    default_config_dir,
    registry_host,
)
from container_mapping.errors import ApiError, RegistryError
from container_mapping.http import HttpClient, Response, TransportError, redact
from container_mapping.model import ImageRecord, Verification
from container_mapping.reference import DIGEST_RE, ImageReference

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
INSECURE_ENV = "CONTAINER_MAPPING_INSECURE_REGISTRIES"
HUB_API_HOST = "registry-1.docker.io"
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# RFC 7235: challenge = scheme [ token68 / #auth-param ]; auth-param = name "=" (token / quoted)
_TCHAR = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME_RE = re.compile(rf"[\s,]*({_TCHAR})")
_PARAM_RE = re.compile(rf'[\s,]*({_TCHAR})[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))', re.S)
_TOKEN68_RE = re.compile(r"[ \t]+[A-Za-z0-9._~+/-]+=*[ \t]*(?=,|$)")


# ---------------------------------------------------------------- WWW-Authenticate


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header; scheme and parameter names lower case."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> tuple[Challenge, ...]:
    """Every challenge in `header`, in order; text that fits no rule is skipped, never raised."""
    found: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while pos < len(header):
        param = _PARAM_RE.match(header, pos)
        if param and found:
            name, quoted, plain = param.groups()
            value = re.sub(r"\\(.)", r"\1", quoted, flags=re.S) if quoted is not None else plain
            found[-1][1].setdefault(name.lower(), value)
            pos = param.end()
            continue
        scheme = _SCHEME_RE.match(header, pos)
        if scheme is None:
            pos += 1
            continue
        found.append((scheme.group(1).lower(), {}))
        pos = scheme.end()
        token68 = _TOKEN68_RE.match(header, pos)  # a credentials hint no registry uses
        if token68:
            pos = token68.end()
    return tuple(Challenge(scheme, params) for scheme, params in found)


# ---------------------------------------------------------------- where a registry is


def api_host(registry: str) -> str:
    """The host that serves a registry's API: Docker Hub's is not `docker.io`."""
    return HUB_API_HOST if registry == HUB_REGISTRY else registry


def uses_plain_http(registry: str, environ: Mapping[str, str]) -> bool:
    """Loopback registries and those listed in `CONTAINER_MAPPING_INSECURE_REGISTRIES`.

    Docker's own default: loopback registries are insecure, everything else needs TLS unless
    the daemon lists it in `insecure-registries`; our list plays that part.
    """
    host = urllib.parse.urlsplit(f"//{registry}").hostname or ""
    if _is_loopback(host):
        return True
    listed = {registry_host(e).lower() for e in environ.get(INSECURE_ENV, "").split(",")}
    return registry.lower() in listed or host in listed


def base_url(registry: str, environ: Mapping[str, str]) -> str:
    scheme = "http" if uses_plain_http(registry, environ) else "https"
    return f"{scheme}://{api_host(registry)}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- the client


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
        self._authorization: dict[tuple[str, str], str] = {}  # (registry, scope) -> header

    def resolve_digest(self, ref: ImageReference, deadline: float | None = None) -> str:
        """The digest the registry holds for `ref`'s tag (or digest); `RegistryError` if unknown."""
        target = ref.tag or ref.digest
        if target is None:
            raise RegistryError(f"{ref} has neither tag nor digest to ask the registry about")
        if deadline is not None and time.monotonic() >= deadline:
            raise RegistryError(f"the time budget ran out before registry {ref.registry} was asked")
        url = f"{base_url(ref.registry, self._environ)}/v2/{ref.repository}/manifests/{target}"
        digest = self._fetch("HEAD", url, ref, deadline).headers.get("docker-content-digest", "")
        if DIGEST_RE.fullmatch(digest.strip()):
            return digest.strip()
        log.debug("%s gave no usable Docker-Content-Digest; hashing the manifest", redact(url))
        body = self._fetch("GET", url, ref, deadline).body
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def _fetch(
        self, method: str, url: str, ref: ImageReference, deadline: float | None
    ) -> Response:
        try:
            cached = self._authorization.get((ref.registry, _pull_scope(ref)))
            cached = cached or self._authorization.get((ref.registry, ""))  # Basic: any repo
            response = self._send(method, url, cached, deadline)
            if response.status == 401:
                authorization = self._answer(ref, response, deadline)
                response = self._send(method, url, authorization, deadline)
        except TransportError as err:
            raise RegistryError(
                f"could not reach registry {ref.registry}: {err}; check the agent's network and "
                f"proxy, or list a plain-HTTP registry in {INSECURE_ENV}"
            ) from err
        if response.status == 401:
            found = self.credentials.lookup(ref.registry, deadline) is not None
            why = "the credentials were not accepted" if found else "no credentials found"
            raise RegistryError(_unauthorized(ref, self.credentials.path, why))
        _check_status(response, ref)
        return response

    def _send(
        self, method: str, url: str, authorization: str | None, deadline: float | None
    ) -> Response:
        headers = {"Accept": ACCEPT}
        if authorization:
            headers["Authorization"] = authorization
        response = self._http.request(method, url, headers=headers, deadline=deadline)
        for _ in range(MAX_REDIRECTS):
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                break
            target = urllib.parse.urljoin(url, location)
            if _origin(target) != _origin(url):
                headers.pop("Authorization", None)  # never hand our credentials to another host
            url = target
            response = self._http.request(method, url, headers=headers, deadline=deadline)
        return response

    def _answer(self, ref: ImageReference, response: Response, deadline: float | None) -> str:
        """The `Authorization` value that answers a 401's challenge; cached for later calls."""
        challenges = {
            c.scheme: c
            for c in reversed(parse_challenges(response.headers.get("www-authenticate", "")))
        }
        if "bearer" in challenges:
            scope, header = self._bearer(ref, challenges["bearer"], deadline)
        elif "basic" in challenges:
            scope, header = "", self._basic(ref, deadline)
        else:
            raise RegistryError(
                f"401 from registry {ref.registry} for repository {ref.repository} without a "
                "Basic or Bearer challenge: this registry's authentication is not supported"
            )
        self._authorization[(ref.registry, scope)] = header
        self._authorization[(ref.registry, _pull_scope(ref))] = header
        return header

    def _basic(self, ref: ImageReference, deadline: float | None) -> str:
        found = self.credentials.lookup(ref.registry, deadline)
        header = found.basic() if found else None
        if header is None:
            raise RegistryError(_unauthorized(ref, self.credentials.path, "no user and password"))
        return header

    def _bearer(
        self, ref: ImageReference, challenge: Challenge, deadline: float | None
    ) -> tuple[str, str]:
        realm = challenge.params.get("realm", "")
        if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(
                f"registry {ref.registry} asked for a token without a usable realm URL"
            )
        scope = challenge.params.get("scope") or _pull_scope(ref)
        found = self.credentials.lookup(ref.registry, deadline)
        if found is not None and not self._may_send_credentials(realm):
            log.warning("not sending credentials to the plain-HTTP token service %s", redact(realm))
            found = None
        token_request = TokenRequest(realm, challenge.params.get("service"), scope, found)
        return scope, "Bearer " + self._token(ref, token_request, deadline)

    def _token(self, ref: ImageReference, request: TokenRequest, deadline: float | None) -> str:
        try:
            response = request.send(self._http, deadline)
            if not response.ok:
                raise RegistryError(_token_refused(ref, request, response.status))
            answer = response.json()
        except TransportError as err:
            raise RegistryError(
                f"could not reach the token service of {ref.registry}: {err}"
            ) from err
        except ApiError as err:
            raise RegistryError(f"token service of {ref.registry}: {err}") from err
        token = _token_field(answer)
        if token is None:
            raise RegistryError(
                f"the token service {redact(request.realm)} of registry {ref.registry} "
                "answered without a token"
            )
        return token

    def _may_send_credentials(self, realm: str) -> bool:
        parts = urllib.parse.urlsplit(realm)
        return parts.scheme == "https" or uses_plain_http(parts.netloc, self._environ)


@dataclass(frozen=True)
class TokenRequest:
    """A request to a token service, as the distribution token-auth spec describes it."""

    realm: str
    service: str | None
    scope: str
    credentials: Credentials | None = field(default=None, repr=False)

    def send(self, http: HttpClient, deadline: float | None) -> Response:
        """GET with Basic credentials, or the OAuth2 refresh-token POST for identity tokens."""
        fields: list[tuple[str, str]] = [("service", self.service)] if self.service else []
        fields += [("scope", part) for part in self.scope.split()]
        creds = self.credentials
        if creds is not None and creds.identity_token:
            fields += [
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.identity_token),
                ("client_id", "container-mapping"),
            ]
            body = urllib.parse.urlencode(fields).encode()
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            return http.request("POST", self.realm, headers=form, body=body, deadline=deadline)
        basic = creds.basic() if creds is not None else None
        headers = {"Authorization": basic} if basic else {}
        url = _add_query(self.realm, fields)
        return http.request("GET", url, headers=headers, deadline=deadline)


def _pull_scope(ref: ImageReference) -> str:
    return f"repository:{ref.repository}:pull"


def _token_field(answer: object) -> str | None:
    """`token`, or OAuth2's `access_token`: the spec lets a token service send either."""
    if not isinstance(answer, dict):
        return None
    token = answer.get("token") or answer.get("access_token")
    return token if isinstance(token, str) and token else None


def _add_query(url: str, fields: Sequence[tuple[str, str]]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = "&".join(q for q in (parts.query, urllib.parse.urlencode(fields)) if q)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def _unauthorized(ref: ImageReference, config: Path, why: str) -> str:
    return (
        f"401 from registry {ref.registry} for repository {ref.repository} ({why}; Docker "
        f"config {config}): run `docker login {ref.registry}` on the agent, or the "
        "pipeline's service connection lacks pull rights"
    )


def _token_refused(ref: ImageReference, request: TokenRequest, status: int) -> str:
    sent = "with" if request.credentials is not None else "without"
    return (
        f"HTTP {status} from the token service {redact(request.realm)} of registry "
        f"{ref.registry} for repository {ref.repository} ({sent} credentials): run "
        f"`docker login {ref.registry}` on the agent, or the pipeline's service connection "
        "lacks pull rights"
    )


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


# ---------------------------------------------------------------- verifying records


class DigestSource(Protocol):
    def resolve_digest(self, ref: ImageReference, deadline: float | None = None) -> str: ...


def verify_records(
    records: Iterable[ImageRecord], client: DigestSource, deadline: float | None = None
) -> tuple[ImageRecord, ...]:
    """Each pushed, tagged record with the registry's verdict; never raises for a registry.

    One registry call per distinct `registry/repository:tag`: a job that pushes one tag from
    several collectors' points of view asks once.
    """
    answers: dict[ImageReference, str | Exception] = {}
    return tuple(_verify_one(record, client, deadline, answers) for record in records)


def _verify_one(
    record: ImageRecord,
    client: DigestSource,
    deadline: float | None,
    answers: dict[ImageReference, str | Exception],
) -> ImageRecord:
    if not record.pushed or record.reference.tag is None:
        return record
    key = record.reference.with_digest(None)
    if key not in answers:
        answers[key] = _ask(client, key, deadline)
    answer = answers[key]
    if isinstance(answer, Exception):
        return replace(
            record, verification=Verification.UNAVAILABLE, note=_add_note(record.note, str(answer))
        )
    return _compare(record, answer)


def _ask(client: DigestSource, ref: ImageReference, deadline: float | None) -> str | Exception:
    try:
        return client.resolve_digest(ref, deadline)
    except (RegistryError, TransportError) as err:
        log.warning("could not verify %s: %s", ref, err)
        return err


def _compare(record: ImageRecord, registry_digest: str) -> ImageRecord:
    if record.digest is None:
        return replace(
            record,
            reference=record.reference.with_digest(registry_digest),
            verification=Verification.VERIFIED,
            registry_digest=registry_digest,
            note=_add_note(record.note, "digest read from the registry; the engine had none"),
        )
    if record.digest == registry_digest:
        return replace(record, verification=Verification.VERIFIED, registry_digest=registry_digest)
    note = (
        f"the registry holds {registry_digest} for tag {record.reference.tag}, not the "
        "pushed digest: the tag was probably pushed again since"
    )
    return replace(
        record,
        verification=Verification.MISMATCH,
        registry_digest=registry_digest,
        note=_add_note(record.note, note),
    )


def _add_note(old: str | None, new: str) -> str:
    return f"{old}; {new}" if old else new

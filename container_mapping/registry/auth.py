"""Answer a registry's 401: Docker's authentication challenge and the token-auth flow.

A 401 carries `WWW-Authenticate`: `Basic`, or `Bearer` naming a token service (realm) that
hands out a token scoped to `repository:<repo>:pull`. Credentials come from the Docker config
that `docker login` wrote on the agent, helpers included, so whatever could push an image can
read its digest too. An identity token (what `az acr login` stores) is exchanged with the
OAuth2 refresh-token grant instead of being sent as a password.

Nothing here puts a password, a token or an Authorization header into a message or a log, and
no credential goes to a token service over plain HTTP unless that host is allowed to be.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from container_mapping.credentials import Credentials, DockerCredentials
from container_mapping.errors import ApiError, RegistryError
from container_mapping.http import HttpClient, Response, TransportError, redact
from container_mapping.reference import ImageReference
from container_mapping.registry.address import uses_plain_http

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------- the token service


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


# ---------------------------------------------------------------- answering a 401


def pull_scope(ref: ImageReference) -> str:
    """The token scope that reads `ref`'s repository."""
    return f"repository:{ref.repository}:pull"


class RegistryAuth:
    """The `Authorization` values that answer registries' challenges, cached for its life.

    Keyed by registry and the scope a request needs (`repository:<name>:pull`, or any other
    the caller asks for), so that any HTTP client can use it: send with `cached`, and on a 401
    send again once with `answer`.
    """

    def __init__(
        self, http: HttpClient, credentials: DockerCredentials, environ: Mapping[str, str]
    ) -> None:
        self._http = http
        self._environ = environ
        self.credentials = credentials
        self._answers: dict[tuple[str, str], str] = {}  # (registry, scope) -> header

    def cached(self, registry: str, scope: str) -> str | None:
        """An earlier answer for `scope`, or a Basic one for the whole registry."""
        found = self._answers.get((registry, scope))
        return found or self._answers.get((registry, ""))  # Basic: any repository

    def answer(self, registry: str, scope: str, challenge: str, deadline: float | None) -> str:
        """The `Authorization` value that answers a 401 whose `WWW-Authenticate` is `challenge`."""
        challenges = {c.scheme: c for c in reversed(parse_challenges(challenge))}
        if "bearer" in challenges:
            asked, header = self._bearer(registry, scope, challenges["bearer"], deadline)
        elif "basic" in challenges:
            asked, header = "", self._basic(registry, scope, deadline)
        else:
            raise RegistryError(
                f"401 from registry {registry} for {_subject(scope)} without a Basic or Bearer "
                "challenge: this registry's authentication is not supported"
            )
        self._answers[(registry, asked)] = header
        self._answers[(registry, scope)] = header
        return header

    def rejected(self, registry: str, scope: str, deadline: float | None) -> RegistryError:
        """The error for a 401 that our answer did not lift."""
        found = self.credentials.lookup(registry, deadline) is not None
        why = "the credentials were not accepted" if found else "no credentials found"
        return RegistryError(self._unauthorized(registry, scope, why))

    def _basic(self, registry: str, scope: str, deadline: float | None) -> str:
        found = self.credentials.lookup(registry, deadline)
        header = found.basic() if found else None
        if header is None:
            raise RegistryError(self._unauthorized(registry, scope, "no user and password"))
        return header

    def _bearer(
        self, registry: str, scope: str, challenge: Challenge, deadline: float | None
    ) -> tuple[str, str]:
        realm = challenge.params.get("realm", "")
        if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(f"registry {registry} asked for a token without a usable realm URL")
        asked = challenge.params.get("scope") or scope
        found = self.credentials.lookup(registry, deadline)
        if found is not None and not self._may_send_credentials(realm):
            log.warning("not sending credentials to the plain-HTTP token service %s", redact(realm))
            found = None
        request = TokenRequest(realm, challenge.params.get("service"), asked, found)
        return asked, "Bearer " + self._token(registry, scope, request, deadline)

    def _token(
        self, registry: str, scope: str, request: TokenRequest, deadline: float | None
    ) -> str:
        try:
            response = request.send(self._http, deadline)
            if not response.ok:
                raise RegistryError(_token_refused(registry, scope, request, response.status))
            answer = response.json()
        except TransportError as err:
            raise RegistryError(f"could not reach the token service of {registry}: {err}") from err
        except ApiError as err:
            raise RegistryError(f"token service of {registry}: {err}") from err
        token = _token_field(answer)
        if token is None:
            raise RegistryError(
                f"the token service {redact(request.realm)} of registry {registry} "
                "answered without a token"
            )
        return token

    def _may_send_credentials(self, realm: str) -> bool:
        parts = urllib.parse.urlsplit(realm)
        return parts.scheme == "https" or uses_plain_http(parts.netloc, self._environ)

    def _unauthorized(self, registry: str, scope: str, why: str) -> str:
        return (
            f"401 from registry {registry} for {_subject(scope)} ({why}; Docker "
            f"config {self.credentials.describe()}): run `docker login {registry}` on the "
            "agent, or the pipeline's service connection lacks pull rights"
        )


def _subject(scope: str) -> str:
    """What a scope is about, for messages: `repository team/app`."""
    kind, _, rest = scope.partition(":")
    name = rest.rpartition(":")[0]
    return f"repository {name}" if kind == "repository" and name else f"scope {scope!r}"


def _token_refused(registry: str, scope: str, request: TokenRequest, status: int) -> str:
    sent = "with" if request.credentials is not None else "without"
    return (
        f"HTTP {status} from the token service {redact(request.realm)} of registry "
        f"{registry} for {_subject(scope)} ({sent} credentials): run "
        f"`docker login {registry}` on the agent, or the pipeline's service connection "
        "lacks pull rights"
    )

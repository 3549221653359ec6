"""A small local server speaking the registry contract, for the registry package's tests.

`FakeRegistry` answers `/v2/<repo>/manifests/<ref>` like a distribution registry, challenges
with Basic or Bearer when asked to, and runs a token endpoint that follows the distribution
token-auth spec. It records every request so tests can check what was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from container_mapping.http import NO_RETRY, HttpClient
from container_mapping.reference import ImageReference
from container_mapping.registry import MANIFEST_TYPES, RegistryClient
from tests.unit.docker_config import PASSWORD, USER

TOKEN = "tok-abc123"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeRegistry:
    """State of the local server; tests set it up, then read `seen`."""

    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    auth: str | None = None  # None, "basic" or "bearer"
    digest_header: bool = True
    challenge_scope: bool = True
    token_field: str = "token"
    redirects: dict[str, str] = field(default_factory=dict)
    anonymous_tokens: bool = False  # the token service hands anyone a token with no rights
    forbidden: bool = False
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, repository: str, tag: str, body: bytes) -> str:
        self.manifests[(repository, tag)] = body
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def requests_to(self, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)]


def basic_ok(header: str | None) -> bool:
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return header == f"Basic {expected}"


class Handler(BaseHTTPRequestHandler):
    state: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self) -> Seen:
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            parts.path,
            urllib.parse.parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.state.seen.append(seen)
        return seen

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._route(self._record())

    def do_GET(self) -> None:
        self._route(self._record())

    def do_POST(self) -> None:
        self._route(self._record())

    def _route(self, seen: Seen) -> None:
        if seen.path == "/token":
            self._token(seen)
        elif seen.path.startswith("/v2/") and "/manifests/" in seen.path:
            self._manifest(seen)
        else:
            self._answer(404, {})

    def _token(self, seen: Seen) -> None:
        if seen.method == "POST":
            form = urllib.parse.parse_qs(seen.body.decode())
            allowed = form.get("refresh_token") == ["identity-xyz"]
        else:
            allowed = basic_ok(seen.headers.get("authorization"))
        if not allowed and self.state.anonymous_tokens:
            self._answer(200, {"Content-Type": "application/json"}, b'{"token":"anonymous"}')
            return
        if not allowed:
            self._answer(401, {"Content-Type": "application/json"}, b'{"details":"bad creds"}')
            return
        body = json.dumps({self.state.token_field: TOKEN, "expires_in": 300}).encode()
        self._answer(200, {"Content-Type": "application/json"}, body)

    def _manifest(self, seen: Seen) -> None:
        repository, _, ref = seen.path[len("/v2/") :].partition("/manifests/")
        if not self._authorized(seen, repository):
            return
        if seen.path in self.state.redirects:
            self._answer(307, {"Location": self.state.redirects[seen.path]})
            return
        body = self.state.manifests.get((repository, ref))
        if self.state.forbidden:
            self._answer(403, {"Content-Type": "application/json"}, b'{"errors":[]}')
            return
        if body is None:
            self._answer(404, {"Content-Type": "application/json"}, b'{"errors":[]}')
            return
        headers = {"Content-Type": MANIFEST_TYPES[0]}
        if self.state.digest_header:
            headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
        self._answer(200, headers, body)

    def _authorized(self, seen: Seen, repository: str) -> bool:
        given_auth = seen.headers.get("authorization")
        if self.state.auth == "basic" and not basic_ok(given_auth):
            self._answer(401, {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        if self.state.auth == "bearer" and given_auth != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="http://{self.state.addr}/token",service="fake-registry"'
            if self.state.challenge_scope:
                challenge += f',scope="repository:{repository}:pull"'
            self._answer(401, {"WWW-Authenticate": challenge})
            return False
        return True


def make_client(environ: dict[str, str]) -> RegistryClient:
    http = HttpClient(timeout=5.0, retry=NO_RETRY, environ=environ)
    return RegistryClient(http, environ=environ)


def ref_for(fake: FakeRegistry, repository: str = "team/app", tag: str = "v1") -> ImageReference:
    return ImageReference(fake.addr, repository, tag)

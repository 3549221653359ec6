"""The registry's authentication challenge, answered inside an httpx client.

The pieces are the capture side's own: `parse_challenges` reads `WWW-Authenticate`,
`TokenRequest` asks the token service (Basic credentials or an identity token), and
`DockerCredentials` finds what `docker login` stored. This module only fits them into httpx's
auth flow: send, and on a 401 answer the challenge once and send again, caching the header per
scope so a crawl of a thousand manifests asks for one token per repository.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

from container_mapping.credentials import DockerCredentials, default_config_dir
from container_mapping.errors import ApiError, RegistryError
from container_mapping.http import HttpClient, redact
from container_mapping.registry import TokenRequest, parse_challenges, uses_plain_http


class RegistryAuth(httpx.Auth):
    def __init__(
        self,
        registry: str,
        environ: Mapping[str, str],
        docker_config_dir: str | None,
        timeout: float,
    ) -> None:
        self.registry = registry
        self._environ = environ
        config = Path(docker_config_dir) if docker_config_dir else default_config_dir(environ)
        self.credentials = DockerCredentials(config, environ)
        self._timeout = timeout
        self._token_http = HttpClient(timeout=timeout, environ=environ)
        self._headers: dict[str, str] = {}  # scope -> Authorization; "" for Basic

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = scope_for(request.url.path)
        cached = self._headers.get(scope) or self._headers.get("")
        if cached:
            request.headers["Authorization"] = cached
        response = yield request
        if response.status_code != 401:
            return
        header = self._answer(response.headers.get("www-authenticate", ""), scope)
        if header is None:
            return
        request.headers["Authorization"] = header
        yield request

    def _answer(self, header: str, scope: str) -> str | None:
        challenges = {c.scheme: c for c in reversed(parse_challenges(header))}
        deadline = time.monotonic() + self._timeout
        found = self.credentials.lookup(self.registry, deadline)
        if "bearer" in challenges:
            params = challenges["bearer"].params
            realm = params.get("realm", "")
            if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
                raise RegistryError(f"registry {self.registry} named no usable token realm")
            if found is not None and not self._may_send(realm):
                found = None
            wanted = params.get("scope") or scope
            request = TokenRequest(realm, params.get("service"), wanted, found)
            self._headers[scope] = "Bearer " + self._token(request, deadline)
            return self._headers[scope]
        if "basic" in challenges and found is not None and found.basic():
            self._headers[""] = str(found.basic())
            return self._headers[""]
        return None

    def _token(self, request: TokenRequest, deadline: float) -> str:
        try:
            response = request.send(self._token_http, deadline)
            answer = response.json() if response.ok else None
        except ApiError as err:
            raise RegistryError(f"token service of {self.registry}: {err}") from err
        token = None
        if isinstance(answer, dict):
            token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"the token service {redact(request.realm)} of {self.registry} gave no token: "
                f"run `docker login {self.registry}` with an account that may read it"
            )
        return token

    def _may_send(self, realm: str) -> bool:
        parts = urllib.parse.urlsplit(realm)
        return parts.scheme == "https" or uses_plain_http(parts.netloc, self._environ)


def scope_for(path: str) -> str:
    """The token scope a distribution API path needs."""
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    for marker in ("/manifests/", "/blobs/", "/tags/"):
        if marker in path:
            return f"repository:{path[len('/v2/') : path.index(marker)]}:pull"
    return ""

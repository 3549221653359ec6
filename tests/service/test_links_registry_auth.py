"""The crawl authenticates as `collect --verify` does: credentials from the Docker config.

A second real docker-registry, on its own port and state directory, requires HTTP Basic
(htpasswd); the crawler finds the user and password `docker login` would have written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from container_mapping.service.links.crawl import Crawler
from tests.servers import serve
from tests.service.oci_push import OciPusher
from tests.service.replies import reply
from tests.service.server import free_port

USER, PASSWORD = "ops", "s3cret-for-tests"


@pytest.fixture
def private_registry(tmp_path: Path, registry_addr: str) -> Iterator[str]:
    del registry_addr  # only to skip where the services (and docker-registry) are not set up
    address = f"127.0.0.1:{free_port()}"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    (tmp_path / "htpasswd").write_text(f"{USER}:{hashed}\n")
    (tmp_path / "registry.yml").write_text(json.dumps({
        "version": 0.1, "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
        "auth": {"htpasswd": {"realm": "tests", "path": str(tmp_path / "htpasswd")}},
        "http": {"addr": address},
    }))  # fmt: skip
    process = subprocess.Popen(
        ["docker-registry", "serve", str(tmp_path / "registry.yml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{address}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the private registry did not start"
            time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(10)


def _docker_config(directory: Path, registry: str, password: str) -> Path:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return directory


def test_basic_credentials_from_the_docker_config(private_registry: str, tmp_path: Path) -> None:
    pusher = OciPusher(private_registry, auth=(USER, PASSWORD))
    try:
        pushed = pusher.index("team/api", "1.0", {"org.opencontainers.image.revision": "a" * 40})
    finally:
        pusher.close()
    config = _docker_config(tmp_path / "docker", private_registry, PASSWORD)
    with Crawler(private_registry, docker_config_dir=str(config)) as crawler:
        crawl = crawler.crawl()
    assert crawl.problems == () and crawl.repositories == ("team/api",)
    assert {a.digest for a in crawl.artifacts} == {pushed.index, *pushed.children.values()}


def test_refused_credentials_are_a_problem_that_names_what_to_do(
    private_registry: str, tmp_path: Path
) -> None:
    config = _docker_config(tmp_path / "docker", private_registry, "wrong")
    with Crawler(private_registry, docker_config_dir=str(config)) as crawler:
        crawl = crawler.crawl(["team/api"])
    [problem] = crawl.problems
    assert "401" in problem and f"docker login {private_registry}" in problem
    assert "wrong" not in problem and PASSWORD not in problem


class TokenRegistry:
    """A registry speaking the distribution token-auth contract, as ACR and Docker Hub do.

    Every API call without `Bearer <token for its scope>` gets 401 with a Bearer challenge
    naming the realm, the service and the scope; the realm hands out a token for a scope when
    given the right Basic credentials. Behind it: one repository, one image, served by digest.
    """

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        self.config = b'{"os":"linux","architecture":"arm64","config":{"Labels":{"a":"b"}}}'
        self.config_digest = "sha256:" + hashlib.sha256(self.config).hexdigest()
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": self.config_digest, "size": len(self.config)},
                    "layers": []}  # fmt: skip
        self.manifest = json.dumps(manifest).encode()
        self.digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        self.token_requests: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/token"):
                    return registry._token(self)
                scope = (
                    "registry:catalog:*" if "_catalog" in self.path else "repository:team/api:pull"
                )
                if self.headers.get("Authorization") != f"Bearer token-for-{scope}":
                    realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
                    challenge = f'Bearer realm="{realm}",service="stand-in",scope="{scope}"'
                    return reply(self, 401, {}, {"WWW-Authenticate": challenge})
                routes = {
                    "/v2/_catalog?n=1000": b'{"repositories":["team/api"]}',
                    "/v2/team/api/tags/list?n=1000": b'{"name":"team/api","tags":["1.0"]}',
                    "/v2/team/api/manifests/1.0": registry.manifest,
                    f"/v2/team/api/blobs/{registry.config_digest}": registry.config,
                }
                body = routes.get(self.path)
                reply(self, 200 if body else 404, body or {})

        self.handler = Handler
        self.port = 0

    def _token(self, handler: Any) -> None:
        self.token_requests.append(handler.path)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return reply(handler, 401, {})
        from urllib.parse import parse_qs, urlsplit

        scope = parse_qs(urlsplit(handler.path).query)["scope"][0]
        reply(handler, 200, {"token": f"token-for-{scope}"})


@pytest.fixture
def token_registry() -> Iterator[TokenRegistry]:
    registry = TokenRegistry()
    with serve(registry.handler) as server:
        registry.port = server.server_port
        yield registry


def test_bearer_tokens_per_scope_from_the_token_service(
    token_registry: TokenRegistry, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{token_registry.port}"
    config = _docker_config(tmp_path / "docker", address, PASSWORD)
    with Crawler(address, docker_config_dir=str(config)) as crawler:
        crawl = crawler.crawl()
    assert crawl.problems == ()
    [image] = crawl.artifacts
    assert (image.digest, image.tags, image.labels) == (token_registry.digest, ("1.0",), {"a": "b"})
    assert image.platform is not None and image.platform.architecture == "arm64"
    scopes = sorted(r.split("scope=")[1] for r in token_registry.token_requests)
    assert scopes == ["registry%3Acatalog%3A%2A", "repository%3Ateam%2Fapi%3Apull"]  # one each

"""The crawl authenticates as `collect --verify` does: credentials from the Docker config.

A second real docker-registry, on its own port and state directory, requires HTTP Basic
(htpasswd); the crawler finds the user and password `docker login` would have written.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from container_mapping.service.links.crawl import Crawler
from tests.service.oci_push import OciPusher
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

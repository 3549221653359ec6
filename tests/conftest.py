"""Shared fixtures: a clean environment, and the real Docker engine and registry.

`scripts/services.sh start` starts both and exports DOCKER_HOST and CM_TEST_REGISTRY; tests
marked `docker` fail (not skip) when CI is set and they are missing, so a green CI run proves
they ran against the real parts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

_PIPELINE_PREFIXES = ("SYSTEM_", "BUILD_", "AGENT_", "INPUT_", "ENDPOINT_", "SECRET_", "RELEASE_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pipeline variable of the machine running the tests leaks into a test."""
    for name in list(os.environ):
        if name.startswith(_PIPELINE_PREFIXES) or name.startswith("CONTAINER_MAPPING_"):
            monkeypatch.delenv(name, raising=False)


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        message = f'{name} is not set: run `eval "$(scripts/services.sh start)"` first'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return value


@pytest.fixture(scope="session")
def docker_host() -> str:
    return _require("DOCKER_HOST")


@pytest.fixture(scope="session")
def registry_addr() -> str:
    return _require("CM_TEST_REGISTRY")


@pytest.fixture
def unique_repo(registry_addr: str) -> str:
    """A repository name no other test uses, on the local registry."""
    return f"{registry_addr}/cmtest/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def docker_client(docker_host: str) -> Iterator[object]:
    """The docker SDK, used by tests to build and push (never by the code under test)."""
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=60)
    yield client
    client.close()

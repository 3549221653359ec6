"""Where a registry's API is, and when it is asked over plain HTTP."""

from __future__ import annotations

import pytest

from container_mapping.registry.address import INSECURE_ENV, base_url, uses_plain_http


@pytest.mark.parametrize(
    "registry", ["localhost", "localhost:5000", "127.0.0.1:5000", "127.9.8.7", "[::1]:5000"]
)
def test_loopback_registries_use_plain_http(registry: str) -> None:
    assert uses_plain_http(registry, {})
    assert base_url(registry, {}).startswith("http://")


@pytest.mark.parametrize("registry", ["myreg.azurecr.io", "10.0.0.5:5000", "localhost.example.com"])
def test_other_registries_use_https(registry: str) -> None:
    assert not uses_plain_http(registry, {})
    assert base_url(registry, {}) == f"https://{registry}"


def test_docker_hub_is_served_by_registry_1() -> None:
    assert base_url("docker.io", {}) == "https://registry-1.docker.io"


def test_insecure_registries_from_the_environment() -> None:
    env = {INSECURE_ENV: " reg.internal:5000 , http://plain.example.com ,other.example.com"}
    assert uses_plain_http("reg.internal:5000", env)
    assert not uses_plain_http("reg.internal:6000", env)  # the port listed is the one meant
    assert uses_plain_http("plain.example.com", env)
    assert uses_plain_http("other.example.com:8443", env)  # no port listed: any port
    assert not uses_plain_http("third.example.com", env)

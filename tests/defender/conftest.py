"""Fixtures of the Defender tests: the ARM stand-in over HTTPS, trusted through a private CA.

`arm` serves one subscription the caller may use (`SUBSCRIPTION`) and knows of one it may not
(`FORBIDDEN`). The environment points the SDKs at it the way a user points them at a sovereign
cloud (`AZURE_RESOURCE_MANAGER_ENDPOINT`), trusts its CA (`REQUESTS_CA_BUNDLE`), and hands over
the token (`CONTAINER_MAPPING_ARM_TOKEN`): nothing in the SDKs is patched. The service fixtures
(`issuer`, `database_url`) come from the service tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.defender.standin import Arm, StandIn, Tls, bearer_token, make_tls
from tests.service.conftest import database_url, issuer, postgres_url  # noqa: F401

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
FORBIDDEN = "9f8e7d6c-5b4a-4392-8170-aaaabbbbcccc"
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def arm(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    state = Arm(token=bearer_token(), subscriptions={SUBSCRIPTION})
    with StandIn(state, tls) as standin:
        for name, value in arm_environment(standin, tls).items():
            monkeypatch.setenv(name, value)
        yield standin


def arm_environment(standin: StandIn, tls: Tls) -> dict[str, str]:
    return {
        "AZURE_RESOURCE_MANAGER_ENDPOINT": standin.url,
        "REQUESTS_CA_BUNDLE": str(tls.ca),
        "CONTAINER_MAPPING_ARM_TOKEN": standin.arm.token,
    }


def cli_environment(extra: dict[str, str]) -> dict[str, str]:
    """The process environment for the CLI: ours, without any CONTAINER_MAPPING_* or Azure
    credentials of the machine, plus `extra`."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONTAINER_MAPPING_", "AZURE_", "REQUESTS_CA_BUNDLE"))
    }
    return {**keep, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}

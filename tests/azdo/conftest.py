"""Fixtures for onboarding tests: the stand-in, a PAT, a state directory, the SDK's cache.

The SDK reads `AZURE_DEVOPS_CACHE_DIR` when it is imported, so it is set here, before any
test imports it, to a directory of this test session (never the user's cache).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["AZURE_DEVOPS_CACHE_DIR"] = tempfile.mkdtemp(prefix="cm-azdo-cache-")

from tests.azdo.standin import World, standin  # noqa: E402

PAT = "stand-in-pat-0123456789"


@pytest.fixture
def world() -> World:
    return World(pat=PAT)


@pytest.fixture
def base(world: World) -> Iterator[str]:
    with standin(world) as url:
        yield url


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONTAINER_MAPPING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", PAT)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"

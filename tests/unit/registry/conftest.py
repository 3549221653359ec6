"""The registry package's tests: a local fake registry, and an environment of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import serve
from tests.unit.docker_config import isolated_environ
from tests.unit.registry.fake import FakeRegistry, Handler


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    state = FakeRegistry()
    handler = type("Handler", (Handler,), {"state": state})
    with serve(handler) as server:
        state.port = server.server_address[1]
        yield state


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return isolated_environ(tmp_path)

"""schemathesis against `POST /v1/links/defender` with a key that may link: generated bodies
reach validation and, when they pass it, storage; none of them makes a server error. Bounded to
a few dozen examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from container_mapping.service import config
from container_mapping.service.app import create_app
from tests.service.conftest import CONTOSO_LINK_KEY, config_document
from tests.service.issuer import Issuer
from tests.service.server import ThreadServer


@pytest.fixture(scope="module")
def running(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'mappings.db'}"
    app = create_app(config.from_dict(config_document(issuer, database)))
    with ThreadServer(app) as server:
        yield server.url
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(running: str) -> Any:
    bounded = schemathesis.Config.from_dict(
        {
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "generation": {"max-examples": 25},
        }
    )
    return schemathesis.openapi.from_url(f"{running}/openapi.json", config=bounded)


schema = schemathesis.pytest.from_fixture("api_schema").include(path="/v1/links/defender")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_no_body_makes_a_server_error(case: Any, running: str) -> None:
    headers = {"X-API-Key": CONTOSO_LINK_KEY}
    case.call_and_validate(base_url=running, headers=headers, checks=[not_a_server_error])

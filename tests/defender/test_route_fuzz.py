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

from tests.service.conftest import CONTOSO_LINK_KEY
from tests.service.fuzz import bounded_schema, served
from tests.service.issuer import Issuer


@pytest.fixture(scope="module")
def running(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(issuer, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(running: str) -> Any:
    return bounded_schema(running, max_examples=25)


schema = schemathesis.pytest.from_fixture("api_schema").include(path="/v1/links/defender")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_no_body_makes_a_server_error(case: Any, running: str) -> None:
    headers = {"X-API-Key": CONTOSO_LINK_KEY}
    case.call_and_validate(base_url=running, headers=headers, checks=[not_a_server_error])

"""schemathesis against the running service's own OpenAPI document: no input makes a 5xx.

Requests carry a valid pipeline token and a read key, so the generated bodies reach the
validation and storage code rather than stopping at authentication. Bounded: a few dozen
examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.service.conftest import CONTOSO, CONTOSO_READ_KEY
from tests.service.fuzz import bounded_schema, served
from tests.service.issuer import Issuer


@pytest.fixture(scope="module")
def running(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(issuer, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(running: str) -> Any:
    return bounded_schema(running, max_examples=12)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_makes_a_server_error(case: Any, running: str, issuer: Issuer) -> None:
    headers = {
        "Authorization": f"Bearer {issuer.token(CONTOSO)}",
        "X-API-Key": CONTOSO_READ_KEY,
    }
    case.call_and_validate(base_url=running, headers=headers, checks=[not_a_server_error])

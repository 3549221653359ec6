"""The service's test fixtures: a local issuer, SQLite and PostgreSQL, the service over HTTP.

`database_url` runs a test once on SQLite and once on a fresh PostgreSQL database (marker
`postgres`; it needs `CM_TEST_POSTGRES_URL` from `scripts/services.sh start`, and fails rather
than skips when CI is set). `service` is the app for two organizations, served by uvicorn on a
loopback port, its tokens signed by the local issuer.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from container_mapping.service import config
from container_mapping.service.app import create_app
from tests.service.issuer import Issuer
from tests.service.server import ThreadServer

CONTOSO = "5e3a7c1d-2b4f-4a6e-9c8d-0f1e2d3c4b5a"
FABRIKAM = "9a8b7c6d-5e4f-4321-8fed-cba987654321"
CONTOSO_READ_KEY = "cm-read-contoso-3f9a1c7e"
CONTOSO_LINK_KEY = "cm-link-contoso-8b2d4e6f"
FABRIKAM_READ_KEY = "cm-read-fabrikam-1a2b3c4d"


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    local = Issuer().start()
    yield local
    local.stop()


def postgres_admin_url() -> str:
    url = os.environ.get("CM_TEST_POSTGRES_URL", "")
    if not url:
        message = 'CM_TEST_POSTGRES_URL is not set: run `eval "$(scripts/services.sh start)"`'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    admin_url = postgres_admin_url()
    name = f"cmtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mappings.db'}"
    return str(request.getfixturevalue("postgres_url"))


def api_key(name: str, key: str, *scopes: str) -> dict[str, Any]:
    return {"name": name, "sha256": config.hash_key(key), "scopes": list(scopes)}


def config_document(issuer: Issuer, database_url: str, **extra: Any) -> dict[str, Any]:
    """The YAML document of a service for contoso and fabrikam, trusting the local issuer."""
    return {
        "database": database_url,
        "organizations": [
            {
                "name": "contoso",
                "id": CONTOSO,
                "issuer": issuer.issuer(CONTOSO),
                "api_keys": [
                    api_key("dash", CONTOSO_READ_KEY, "read"),
                    api_key("ops", CONTOSO_LINK_KEY, "link"),
                ],
            },
            {
                "name": "fabrikam",
                "id": FABRIKAM,
                "issuer": issuer.issuer(FABRIKAM),
                "api_keys": [
                    api_key("dash", FABRIKAM_READ_KEY, "read")
                ],
            },
        ],
        "trust": {"leeway": 30, "jwks_refresh_interval": 0.5, "retry_after": 7},
        **extra,
    }  # fmt: skip


@dataclass
class Service:
    url: str
    client: httpx.Client
    engine: Engine
    issuer: Issuer

    def post_report(
        self, body: Any, token: str | None, key: str | None = None, path: str = "/v1/reports"
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post(path, json=body, headers=headers)

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def service(issuer: Issuer, database_url: str) -> Iterator[Service]:
    settings = config.from_dict(config_document(issuer, database_url))
    app = create_app(settings)
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield Service(server.url, client, app.state.engine, issuer)
    app.state.engine.dispose()

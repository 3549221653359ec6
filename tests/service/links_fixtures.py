"""Fixtures of the links and trace tests: the service (on conftest's `database_url`: SQLite,
and PostgreSQL when `CM_TEST_POSTGRES_URL` is set) for two organizations that each hold a read
and a link key, trusting conftest's local `issuer`, with a helper that reports a job's pushes
through the service's own route with a token that issuer signed.

A test module imports `links_service` and asks for the fixture `links`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from container_mapping.model import (
    CollectionWindow,
    ImageRecord,
    MappingReport,
    PipelineContext,
)
from container_mapping.reference import ImageReference
from tests.service.issuer import PROJECT_ID, Issuer
from tests.service.server import ThreadServer

CONTOSO = "5e3a2f70-1b4c-4d8e-9f00-0000000c0a70"
FABRIKAM = "8a1b2c3d-4e5f-4a6b-8c7d-00000fab71c0"
SCHEMA = Path(__file__).parents[2] / "docs" / "trace-answer.schema.json"


@dataclass
class Keys:
    read: str
    link: str


@dataclass
class Service:
    url: str
    issuer: Issuer
    keys: dict[str, Keys]  # org id -> its keys
    database: str

    def client(self, org: str = CONTOSO, scope: str = "read") -> httpx.Client:
        key = getattr(self.keys[org], scope)
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def report(self, org: str, images: list[ImageRecord], **context: str) -> dict[str, Any]:
        """POST /v1/reports as a job of `org` would, with a token its issuer signed."""
        run_id = context.pop("run_id", "1234")
        commit = context.pop("commit", "0f3c9a7e1b2d4c6f8a0b1c2d3e4f5a6b7c8d9e0f")
        pipeline = PipelineContext(
            organization_url="https://dev.azure.com/fabrikam/",
            organization_id=org,
            project="Contoso",
            project_id=PROJECT_ID,
            definition_id="42",
            definition_name="web-app",
            run_id=run_id,
            run_number=context.pop("run_number", f"20261127.{run_id}"),
            repository_name="web-app",
            commit=commit,
            branch="refs/heads/main",
            job_name="Build",
            **context,
        )
        now = datetime.now(timezone.utc)
        report = MappingReport(
            CollectionWindow(now - timedelta(minutes=5), now), pipeline, tuple(images)
        )
        token = self.issuer.token(org, run_id=run_id, rpo_ver=commit)
        answer = httpx.post(
            f"{self.url}/v1/reports",
            json=report.to_dict(),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def pushed(reference: str, digest: str, pushed_at: datetime | None = None) -> ImageRecord:
    ref = ImageReference.parse(reference).with_digest(digest)
    return ImageRecord(ref, None, True, pushed_at=pushed_at or datetime.now(timezone.utc))


@pytest.fixture(name="links")
def links_service(database_url: str, issuer: Issuer) -> Iterator[Service]:
    from container_mapping.service.app import create_app
    from container_mapping.service.config import from_dict

    keys = {org: Keys(f"read-{uuid.uuid4().hex}", f"link-{uuid.uuid4().hex}")
            for org in (CONTOSO, FABRIKAM)}  # fmt: skip
    settings = from_dict(
        {
            "database": database_url,
            "organizations": [
                {
                    "name": name,
                    "id": org,
                    "issuer": issuer.issuer(org),
                    "api_keys": [
                        {"name": "reader", "sha256": _sha(keys[org].read), "scopes": ["read"]},
                        {"name": "linker", "sha256": _sha(keys[org].link), "scopes": ["link"]},
                    ],
                }
                for name, org in (("contoso", CONTOSO), ("fabrikam", FABRIKAM))
            ],
        }
    )
    app = create_app(settings)
    with ThreadServer(app) as server:
        yield Service(server.url, issuer, keys, database_url)
    app.state.engine.dispose()


def _sha(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def check_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """Validate a trace answer against the documented JSON Schema."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(answer)
    return answer

"""Reports as a job sends them: built by the package's own model, so they follow the schema."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from container_mapping.model import CollectionWindow, ImageRecord, MappingReport, PipelineContext
from container_mapping.reference import ImageReference
from tests.service.issuer import COMMIT, PROJECT_ID, REPOSITORY_URI


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def context(org_id: str, **overrides: str) -> PipelineContext:
    values = {
        "organization_url": "https://dev.azure.com/fabrikam/",
        "organization_id": org_id,
        "project": "Contoso",
        "project_id": PROJECT_ID,
        "definition_id": "42",
        "definition_name": "web-app",
        "run_id": "1234",
        "run_number": "20261127.1",
        "repository_name": "web-app",
        "repository_uri": REPOSITORY_URI,
        "commit": COMMIT,
        "branch": "refs/heads/main",
        "job_id": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
        "job_name": "Build",
        "job_attempt": "1",
        "plan_id": "4b1f0a8e-55c3-4c5b-9a43-0d6f8a1e2b31",
        "host_type": "build",
        "agent_os": "Linux",
    }
    values.update(overrides)
    return PipelineContext(**values)


def report(org_id: str, images: int = 5, seed: str = "", **overrides: str) -> dict[str, Any]:
    """A version 1.0 report of `images` pushed images, unique by `seed`."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records = tuple(
        ImageRecord(
            reference=ImageReference(
                "registry.contoso.example", f"shop/web-{i}", "1.0", digest(f"{seed}/{i}")
            ),
            image_id=digest(f"{seed}/{i}/config"),
            pushed=True,
            pushed_at=now,
            platform="linux/amd64",
        )
        for i in range(images)
    )
    built = MappingReport(
        window=CollectionWindow(now - timedelta(minutes=5), now),
        pipeline=context(org_id, **overrides),
        images=records,
        engine_version="26.1.5",
        generated_at=now,
    )
    return built.to_dict()

"""Fault matrix, host size: an engine holding 10,000 other images.

Microsoft's task sends every image on the host; this one sends what the job pushed, so the
body, the output and the time budget must not depend on how many images the host holds.
The 10,000 images (one shared layer, distinct configs, untagged) go into an engine of the
module's own, loaded from four archives at once, and leave with it: about 15 s in all, where
loading them tagged into the shared engine and pruning them took minutes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.images import build, load_untagged, push
from tests.services import private_engine

from .shim import ACCESS_TOKEN, assert_secrets_kept, pipeline_env, pre_job, run_task
from .stubs import AzureStub

pytestmark = [pytest.mark.docker, pytest.mark.node]

OTHERS = 10_000
BUDGET = 10


@pytest.fixture(scope="module")
def crowded_engine(registry_addr: str) -> Iterator[str]:
    """The DOCKER_HOST of an engine of this module's own that holds 10,000 other images."""
    with private_engine(registry_addr) as host:
        load_untagged(host, OTHERS, f"e2e-{uuid.uuid4().hex[:8]}")
        yield host


@pytest.fixture
def crowded_client(crowded_engine: str) -> Iterator[Any]:
    import docker  # type: ignore[import-untyped]

    client = docker.DockerClient(base_url=crowded_engine, timeout=60)
    yield client
    client.close()


def test_ten_thousand_other_images(
    crowded_engine: str, crowded_client: Any, registry_addr: str
) -> None:
    assert len(crowded_client.api.images(quiet=True)) >= OTHERS
    with AzureStub() as stub:
        env = pipeline_env(
            stub.collection_uri,
            DOCKER_HOST=crowded_engine,
            INPUT_ENDPOINT=stub.ingest_url,
            INPUT_TIMEOUTSECONDS=str(BUDGET),
        )
        # Built before the job starts: a build's container events would otherwise fill much
        # of the engine's 256-event buffer, and the busier the machine the more of it.
        references = [f"{registry_addr}/cmtest/crowd-{uuid.uuid4().hex[:8]}:{n}" for n in range(5)]
        for reference in references:
            build(crowded_client, reference)
        env = pre_job(env)
        pushed = {reference: push(crowded_client, reference) for reference in references}
        time.sleep(0.05)
        run = run_task(env)

    assert run.code == 0 and run.warnings == [], run
    assert run.seconds < BUDGET
    assert_secrets_kept(run, ACCESS_TOKEN, stub.behaviour.oidc_token)
    assert "mapped 5 images" in run.plain_lines[0]
    (ingest,) = stub.requests_to("/ingest/")
    body = ingest.json()
    assert sorted(body["dockerEvents"]) == sorted(f"ID={r}" for r in pushed)
    assert len(body["dockerImages"]) == 5
    assert len(ingest.body) < 4096  # the host's size does not reach the wire

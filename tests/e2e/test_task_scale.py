"""Fault matrix, host size: an engine holding 10,000 other images.

Microsoft's task sends every image on the host; this one sends what the job pushed, so the
body, the output and the time budget must not depend on how many images the host holds.
Loading and pruning 10,000 images (one shared layer, distinct configs) takes a minute or two
on this machine, so they are loaded once for the module and pruned by label afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.images import build, push

from .shim import ACCESS_TOKEN, assert_secrets_kept, pipeline_env, pre_job, run_task
from .stubs import AzureStub

pytestmark = [pytest.mark.docker, pytest.mark.node]

OTHERS = 10_000
BUDGET = 10
LABEL = "container-mapping.bench"


@pytest.fixture(scope="module")
def crowded_engine(docker_host: str) -> Iterator[Any]:
    import docker  # type: ignore[import-untyped]

    from tests.integration.images import image_archive

    client = docker.DockerClient(base_url=docker_host, timeout=900)
    run = f"e2e-{uuid.uuid4().hex[:8]}"
    client.images.load(image_archive(0, OTHERS, run))
    try:
        yield client
    finally:
        client.images.prune(filters={"dangling": False, "label": f"{LABEL}={run}"})
        client.close()


def test_ten_thousand_other_images(
    crowded_engine: Any, docker_host: str, registry_addr: str
) -> None:
    assert len(crowded_engine.images.list()) >= OTHERS
    with AzureStub() as stub:
        env = pipeline_env(
            stub.collection_uri,
            DOCKER_HOST=docker_host,
            INPUT_ENDPOINT=stub.ingest_url,
            INPUT_TIMEOUTSECONDS=str(BUDGET),
        )
        env = pre_job(env)
        pushed = {}
        for n in range(5):
            reference = f"{registry_addr}/cmtest/crowd-{uuid.uuid4().hex[:8]}:{n}"
            build(crowded_engine, reference)
            pushed[reference] = push(crowded_engine, reference)
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

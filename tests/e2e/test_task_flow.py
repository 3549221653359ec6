"""pre-job then post-job through `node task/index.js`, against the real engine and registry.

The stand-in Azure DevOps and ingestion endpoints run in this process (`stubs.AzureStub`) and
the tests assert on what they received: the token request, the Defender body line by line, the
mapping-service report and its idempotency key.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from tests.integration.images import build, push

from .shim import ACCESS_TOKEN, assert_secrets_kept, pipeline_env, pre_job, run_task
from .stubs import AzureStub

pytestmark = [pytest.mark.docker, pytest.mark.node]

GO_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC"


def _env(
    stub: AzureStub, docker_host: str, protocol: str = "defender", **extra: str
) -> dict[str, str]:
    return pipeline_env(
        stub.collection_uri,
        DOCKER_HOST=docker_host,
        INPUT_ENDPOINT=stub.ingest_url,
        INPUT_PROTOCOL=protocol,
        INPUT_TIMEOUTSECONDS="20",
        INPUT_FAILONERROR="false",
        **extra,
    )


def _push_two(
    docker_client: Any, unique_repo: str, labels: dict[str, str] | None = None
) -> dict[str, str]:
    pushed = {}
    for tag in ("1", "2"):
        reference = f"{unique_repo}:{tag}"
        build(docker_client, reference, labels=labels)
        pushed[reference] = push(docker_client, reference)
    build(docker_client, f"{unique_repo}:built-only")  # built in the job, never pushed
    time.sleep(0.05)  # the engine stamps events with its own clock
    return pushed


def test_defender_receives_exactly_what_the_job_pushed(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    earlier = f"{unique_repo}-before:1"
    build(docker_client, earlier)
    push(docker_client, earlier)  # before the job started: not this job's
    time.sleep(1.5)  # past the clock slack post-job allows before pre-job's time
    with AzureStub() as stub:
        env = pre_job(_env(stub, docker_host))
        assert "CONTAINERMAPPING_JOBSTART" in env
        pushed = _push_two(docker_client, unique_repo)
        run = run_task(env)

    assert run.code == 0, run
    assert run.warnings == [] and run.errors == []
    assert run.plain_lines == [run.plain_lines[0]]
    assert run.plain_lines[0].startswith("container-mapping: mapped 2 images: ")
    for reference, digest in pushed.items():
        assert f"{reference}@{digest}" in run.plain_lines[0]
    assert_secrets_kept(run, ACCESS_TOKEN, stub.behaviour.oidc_token)

    (token_request,) = stub.requests_to("/oidctoken")
    assert token_request.path == (
        "/fabrikam/7d1c6c39-5a1e-4c59-9c0e-2a4f1b0c0a01/_apis/distributedtask/hubs/build/plans/"
        "4b1f0a8e-55c3-4c5b-9a43-0d6f8a1e2b31/jobs/12f1170f-54f2-53f3-20dd-22fc7dff55f9/"
        "oidctoken?api-version=7.1-preview.1"
    )
    assert token_request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert token_request.json() == {"authorizationId": "00000000-0000-0000-0000-000000000000"}

    (ingest,) = stub.requests_to("/ingest/")
    assert ingest.headers["Authorization"] == f"Bearer {stub.behaviour.oidc_token}"
    assert ingest.headers["Content-Type"] == "application/json"
    body = ingest.json()
    assert set(body) == {"dockerVersion", "dockerEvents", "dockerImages"}
    assert (
        body["dockerVersion"] == docker_client.version()["Version"]
    )  # the engine's, not a client's
    assert sorted(body["dockerEvents"]) == sorted(f"ID={r}" for r in pushed)
    assert len(body["dockerImages"]) == 2
    for reference, digest in pushed.items():
        repo, tag = reference.rsplit(":", 1)
        pattern = rf"CreatedAt={GO_TIME}::Repo={re.escape(repo)}::Tag={tag}::Digest={digest}"
        assert any(re.fullmatch(pattern, line) for line in body["dockerImages"]), body
    assert earlier.rsplit(":", 1)[0] not in str(body)
    assert "built-only" not in str(body)


def test_mapping_service_gets_the_report_with_a_stable_idempotency_key(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    labels = {"maintainer": "Zoë Brontë 🚢", "org.opencontainers.image.title": "Überbau"}
    with AzureStub() as stub:
        env = pre_job(_env(stub, docker_host, "mapping-service", SYSTEM_JOBNAME="Bau & Prüfung ✓"))
        pushed = _push_two(docker_client, unique_repo, labels)
        first = run_task(env)
        second = run_task(env)
        retried = run_task({**env, "SYSTEM_JOBATTEMPT": "2"})

    for run in (first, second, retried):
        assert run.code == 0 and run.warnings == [], run
        assert_secrets_kept(run, ACCESS_TOKEN, stub.behaviour.oidc_token)
    sent = stub.requests_to("/ingest/")
    assert len(sent) == 3
    keys = [r.headers.get("Idempotency-Key") for r in sent]
    assert keys[0] and keys[0] == keys[1] != keys[2]
    report = sent[0].json()
    assert report["schemaVersion"] == "1.1"
    assert report["pipeline"]["jobName"] == "Bau & Prüfung ✓"
    assert report["pipeline"]["runId"] == "1234"
    found = {i["reference"]: i for i in report["images"] if i["pushed"]}
    for reference, digest in pushed.items():
        assert found[f"{reference}@{digest}"]["labels"]["maintainer"] == labels["maintainer"]


def test_nothing_pushed_is_one_informational_line(docker_host: str) -> None:
    with AzureStub() as stub:
        env = pre_job(_env(stub, docker_host))
        run = run_task(env)
    assert run.code == 0 and run.warnings == [], run
    assert len(run.plain_lines) == 1
    assert "no image was pushed" in run.plain_lines[0]
    assert stub.received == []  # no token asked for, nothing sent


def test_post_job_without_pre_job_falls_back_to_a_window(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    reference = f"{unique_repo}:{uuid.uuid4().hex[:6]}"
    build(docker_client, reference)
    digest = push(docker_client, reference)
    time.sleep(0.05)
    with AzureStub() as stub:
        run = run_task(_env(stub, docker_host))
    # An hour back can reach past the engine's event buffer on a busy engine: one warning then.
    assert run.code == 0 and len(run.warnings) <= 1, run
    (ingest,) = stub.requests_to("/ingest/")
    assert f"ID={reference}" in ingest.json()["dockerEvents"]
    assert any(digest in line for line in ingest.json()["dockerImages"])

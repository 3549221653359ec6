"""End to end: the task, run as the agent runs it, reports to the running service.

`node task/index.js` (pre-job, pushes on the real engine and registry, post-job) with
`protocol: mapping-service` and then `protocol: defender`, both pointed at a `serve` process.
The job's token route is a local stand-in answering a token the local issuer signed for the
job's organization, project, pipeline and run; the service stores the report once, with the
token's context, and the digests the registry holds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from container_mapping.service import database
from tests.e2e.shim import ACCESS_TOKEN, assert_secrets_kept, pipeline_env, pre_job, run_task
from tests.e2e.stubs import AzureStub, Behaviour
from tests.integration.images import build, push
from tests.service.conftest import config_document
from tests.service.issuer import COMMIT, Issuer
from tests.service.server import ServeProcess, free_port

pytestmark = [pytest.mark.docker, pytest.mark.node]

JOB_ORG = "c0ffee00-0000-4000-8000-000000000001"  # SYSTEM_COLLECTIONID of tests.e2e.shim


def run_job(
    issuer: Issuer, server: ServeProcess, docker: Any, docker_host: str, repo: str, protocol: str
) -> tuple[Any, dict[str, str], str]:
    path = "/v1/reports" if protocol == "mapping-service" else "/azuredevops/v1/container-mappings"
    token = issuer.token(JOB_ORG, run_id="1234", def_id="42")
    with AzureStub(Behaviour(oidc_token=token)) as stub:
        env = pre_job(pipeline_env(
            stub.collection_uri, DOCKER_HOST=docker_host, INPUT_PROTOCOL=protocol,
            INPUT_ENDPOINT=f"{server.url}{path}", INPUT_TIMEOUTSECONDS="30",
            INPUT_FAILONERROR="false",
        ))  # fmt: skip
        pushed = {}
        for tag in ("1", "2"):
            build(docker, f"{repo}:{tag}")
            pushed[f"{repo}:{tag}"] = push(docker, f"{repo}:{tag}")
        time.sleep(0.05)
        run = run_task(env)
        assert len(stub.requests_to("/oidctoken")) == 1
    assert_secrets_kept(run, ACCESS_TOKEN, token)
    return run, pushed, token


@pytest.mark.parametrize("protocol", ["mapping-service", "defender"])
def test_the_task_reports_to_the_service(
    tmp_path: Path,
    issuer: Issuer,
    database_url: str,
    docker_client: Any,
    docker_host: str,
    unique_repo: str,
    protocol: str,
) -> None:
    document = config_document(issuer, database_url)
    document["organizations"].append(
        {"name": "job", "id": JOB_ORG, "issuer": issuer.issuer(JOB_ORG)}
    )
    config_path = tmp_path / "service.yml"
    config_path.write_text(yaml.safe_dump(document))
    server = ServeProcess(config_path, free_port()).start()
    try:
        run, pushed, _ = run_job(issuer, server, docker_client, docker_host, unique_repo, protocol)
    finally:
        server.stop()
    assert run.code == 0 and run.warnings == [] and run.errors == [], run

    engine = database.make_engine(database_url)
    try:
        with engine.connect() as connection:
            reports = list(connection.execute(text(
                'SELECT id, org_id, project_id, pipeline_id, run_id, "commit", protocol '
                "FROM reports"
            )))  # fmt: skip
            images = list(
                connection.execute(text("SELECT registry, repository, tag, digest FROM images"))
            )
    finally:
        engine.dispose()
    [(_, org_id, project_id, pipeline_id, run_id, commit, stored_protocol)] = reports
    assert (org_id, pipeline_id, run_id, commit) == (JOB_ORG, "42", "1234", COMMIT)
    assert project_id == "7d1c6c39-5a1e-4c59-9c0e-2a4f1b0c0a01" and stored_protocol == protocol
    found = {
        f"{registry}/{repository}:{tag}": digest for registry, repository, tag, digest in images
    }
    # The engine is shared with other tests: their pushes in this job's window are in the report
    # too (what the task sees on a shared agent); this job's own pushes must all be there, exact.
    assert pushed.items() <= found.items()

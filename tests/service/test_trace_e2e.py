"""End to end: a job's push, a registry crawl and a pod document give one chain.

The task runs as the agent runs it (`node task/index.js`, pre-job, a real docker push, post-job
with `protocol: mapping-service`) and reports to a `serve` process. A later step of the same
pipeline assembles an index of two platform manifests in the real registry: the one the job
pushed (linux/amd64) and another (linux/arm64). The operator then runs `link registry` and
`link pods` as processes, and a cluster runs the image by the *index* digest (what a node
records when it pulls a multi-platform tag). `trace` names the run and commit from the index
and from the manifest the job pushed, and not from the platform built elsewhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.shim import pipeline_env, pre_job, run_task
from tests.e2e.stubs import AzureStub, Behaviour
from tests.integration.images import build, push
from tests.service.conftest import api_key, config_document
from tests.service.issuer import COMMIT, Issuer
from tests.service.links_fixtures import check_answer
from tests.service.oci_push import OCI_INDEX, OciPusher, canonical
from tests.service.server import ServeProcess, free_port
from tests.service.test_links_pods import owner, pod
from tests.service.test_trace_cli import cli

pytestmark = [pytest.mark.docker, pytest.mark.node]

JOB_ORG = "c0ffee00-0000-4000-8000-000000000001"  # SYSTEM_COLLECTIONID of tests.e2e.shim
READ, LINK = "e2e-read-key-7f3a", "e2e-link-key-9b2c"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _index_over(registry: str, repository: str, pushed: str) -> tuple[str, str]:
    """An index of the pushed manifest (amd64) and a new arm64 image; its and arm64's digest."""
    manifest = httpx.get(
        f"http://{registry}/v2/{repository}/manifests/{pushed}",
        headers={"Accept": DOCKER_MANIFEST}, timeout=30,
    )  # fmt: skip
    assert manifest.status_code == 200
    pusher = OciPusher(registry)
    try:
        arm64, arm64_size = pusher.image(repository, {}, arch="arm64", variant="v8")
        body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": pushed, "size": len(manifest.content),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm64,
             "size": arm64_size, "platform": {"os": "linux", "architecture": "arm64",
                                              "variant": "v8"}},
        ]})  # fmt: skip
        index = pusher.manifest(repository, "multi", body, OCI_INDEX)
    finally:
        pusher.close()
    return index, arm64


def test_a_job_a_crawl_and_a_cluster_give_one_chain(
    tmp_path: Path,
    issuer: Issuer,
    database_url: str,
    docker_client: Any,
    docker_host: str,
    unique_repo: str,
    registry_addr: str,
) -> None:
    document = config_document(issuer, database_url)
    document["organizations"].append({
        "name": "fabrikam-ci", "id": JOB_ORG, "issuer": issuer.issuer(JOB_ORG),
        "api_keys": [api_key("reader", READ, "read"), api_key("linker", LINK, "link")],
    })  # fmt: skip
    config = tmp_path / "service.yml"
    config.write_text(yaml.safe_dump(document))
    server = ServeProcess(config, free_port()).start()
    try:
        token = issuer.token(JOB_ORG, run_id="1234", def_id="42")
        with AzureStub(Behaviour(oidc_token=token)) as stub:
            env = pre_job(pipeline_env(
                stub.collection_uri, DOCKER_HOST=docker_host, INPUT_PROTOCOL="mapping-service",
                INPUT_ENDPOINT=f"{server.url}/v1/reports", INPUT_TIMEOUTSECONDS="30",
            ))  # fmt: skip
            build(docker_client, f"{unique_repo}:1")
            pushed = push(docker_client, f"{unique_repo}:1")
            time.sleep(0.05)
            run = run_task(env)
        assert run.code == 0 and run.warnings == [], run

        repository = unique_repo.split("/", 1)[1]
        index, arm64 = _index_over(registry_addr, repository, pushed)
        done = cli("link", "registry", registry_addr, "--repository", repository,
                   key=LINK, server=server.url)  # fmt: skip
        assert done.returncode == 0 and "linked 4 manifests" in done.stdout, done.stdout

        pods = {"kind": "List", "items": [
            pod("shop-5c7d9-x", ("ReplicaSet", "shop-5c7d9"),
                [("web", f"{unique_repo}:multi", f"{unique_repo}@{index}")]),
            owner("ReplicaSet", "shop-5c7d9", ("Deployment", "shop")),
        ]}  # fmt: skip
        (tmp_path / "pods.json").write_text(json.dumps(pods))
        done = cli("link", "pods", str(tmp_path / "pods.json"), "--cluster", "aks-e2e",
                   key=LINK, server=server.url)  # fmt: skip
        assert done.returncode == 0, done.stderr

        by_index = cli("trace", index, "--json", key=READ, server=server.url)
        by_pushed = cli("trace", pushed, "--json", key=READ, server=server.url)
        by_arm64 = cli("trace", arm64, "--json", key=READ, server=server.url)
        table = cli("trace", index, key=READ, server=server.url)
    finally:
        server.stop()

    for done in (by_index, by_pushed):
        assert done.returncode == 0, done.stderr
        [image] = check_answer(json.loads(done.stdout))["images"]
        [made] = [m for m in image["producedBy"] if m["evidence"] == "report"]
        assert made["run"]["id"] == "1234" and made["commit"] == COMMIT
        assert made["digest"] == pushed and made["pipeline"]["id"] == "42"
    index_image = json.loads(by_index.stdout)["images"][0]
    assert {(r["digest"], r["platform"]) for r in index_image["related"]} == {
        (pushed, "linux/amd64"), (arm64, "linux/arm64/v8"),
    }  # fmt: skip
    [runs] = index_image["runsIn"]
    assert (runs["cluster"], runs["workload"]["name"], runs["container"]) == (
        "aks-e2e",
        "shop",
        "web",
    )
    assert json.loads(by_pushed.stdout)["images"][0]["runsIn"][0]["pod"] == "shop-5c7d9-x"
    assert "Deployment/shop" in table.stdout and "1234" in table.stdout
    # The other platform was built elsewhere: it belongs to the index, not to the job's run.
    [other] = check_answer(json.loads(by_arm64.stdout))["images"]
    assert other["producedBy"] == [] and other["related"][0]["digest"] == index

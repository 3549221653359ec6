"""`container-mapping link registry|pods` and `trace` as an operator runs them: real processes,
the real registry, the service over HTTP; tables for people, schema-valid JSON for scripts, and
one clear line with a documented exit code for each failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.service.links_fixtures import (  # noqa: F401 (the `links` fixture)
    CONTOSO,
    Service,
    check_answer,
    links_service,
    pushed,
)
from tests.service.oci_push import OciPusher
from tests.service.server import free_port
from tests.service.test_links_pods import owner, pod

ROOT = Path(__file__).parents[2]


def cli(*args: str, key: str | None = None, server: str | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINER_MAPPING_")}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    if key:
        env["CONTAINER_MAPPING_API_KEY"] = key
    if server:
        env["CONTAINER_MAPPING_SERVER"] = server
    return subprocess.run(
        [sys.executable, "-m", "container_mapping", *args],
        capture_output=True, text=True, env=env, input=stdin, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def linked(links: Service, registry_addr: str, tmp_path: Path) -> dict[str, Any]:
    repo = f"cmtest/cli-{uuid.uuid4().hex[:10]}"
    pusher = OciPusher(registry_addr)
    try:
        index = pusher.index(repo, "2.0", {})
    finally:
        pusher.close()
    links.report(CONTOSO, [pushed(f"{registry_addr}/{repo}:2.0", index.index or "")],
                 run_id="5678", run_number="20261127.3")  # fmt: skip
    link_key = links.keys[CONTOSO].link
    done = cli("link", "registry", registry_addr, "--repository", repo,
               key=link_key, server=links.url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "linked 3 manifests of 1 repositories" in done.stdout
    assert "1 attestations skipped" in done.stdout
    amd64 = index.children["linux/amd64"]
    document = {"kind": "List", "items": [
        pod("api-6b7c8d-x", ("ReplicaSet", "api-6b7c8d"),
            [("api", f"{registry_addr}/{repo}:2.0", f"docker-pullable://{registry_addr}/{repo}@{amd64}")]),
        owner("ReplicaSet", "api-6b7c8d", ("Deployment", "payments-api")),
    ]}  # fmt: skip
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(document))
    done = cli("link", "pods", str(path), "--cluster", "aks-prod", key=link_key, server=links.url)
    assert done.returncode == 0, done.stderr
    assert "linked 1 containers of cluster aks-prod (0 without a manifest digest)" in done.stdout
    return {"repo": repo, "index": index.index, "amd64": amd64, "registry": registry_addr}


def test_trace_prints_the_chain_and_the_page(links: Service, linked: dict[str, Any]) -> None:
    done = cli("trace", linked["amd64"], key=links.keys[CONTOSO].read, server=links.url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("20261127.3", "5678", "0f3c9a7e1b2d", "aks-prod", "Deployment/payments-api",
                     "linux/amd64", "contoso", f"page: {links.url}/?digest="):  # fmt: skip
        assert expected in out, expected


def test_trace_json_is_the_documented_answer(links: Service, linked: dict[str, Any]) -> None:
    reference = f"{linked['registry']}/{linked['repo']}:2.0"
    done = cli("trace", reference, "--json", key=links.keys[CONTOSO].read, server=links.url)
    assert done.returncode == 0, done.stderr
    answer = check_answer(json.loads(done.stdout))
    assert answer["query"] == {"kind": "reference", "value": reference, "cluster": None}
    assert answer["images"][0]["digest"] == linked["index"]
    assert answer["images"][0]["runsIn"][0]["workload"]["name"] == "payments-api"


@pytest.mark.parametrize(
    "flags",
    [["--commit", "0f3c9a7e1b2d4c6f8a0b1c2d3e4f5a6b7c8d9e0f"],
     ["--repository", "https://dev.azure.com/fabrikam/Contoso/_git/web-app"],
     ["--pipeline", "contoso/Contoso/42"]],
)  # fmt: skip
def test_reverse_questions(links: Service, linked: dict[str, Any], flags: list[str]) -> None:
    done = cli("trace", *flags, "--json", key=links.keys[CONTOSO].read, server=links.url)
    assert done.returncode == 0, done.stderr
    assert [i["digest"] for i in json.loads(done.stdout)["images"]] == [linked["index"]]


def test_unmapped_from_stdin_snapshot(links: Service, linked: dict[str, Any]) -> None:
    stray = {"kind": "List", "items": [pod("x-0", ("DaemonSet", "agent"),
             [("agent", "vendor/agent:1", "vendor/agent@sha256:" + "e" * 64)])]}  # fmt: skip
    done = cli("link", "pods", "-", "--cluster", "edge", key=links.keys[CONTOSO].link,
               server=links.url, stdin=json.dumps(stray))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = cli("trace", "--unmapped", key=links.keys[CONTOSO].read, server=links.url)
    assert done.returncode == 0 and "DaemonSet/agent" in done.stdout, done.stderr
    assert "payments-api" not in done.stdout
    done = cli("trace", "--unmapped", "--cluster", "aks-prod", "--json",
               key=links.keys[CONTOSO].read, server=links.url)  # fmt: skip
    assert json.loads(done.stdout)["unmapped"] == []


def test_failures_are_one_line_with_their_exit_code(links: Service) -> None:
    digest = "sha256:" + "7" * 64
    unreachable = cli("trace", digest, key="k", server=f"http://127.0.0.1:{free_port()}")
    refused = cli("trace", digest, key="wrong", server=links.url)
    unknown = cli("trace", digest, key=links.keys[CONTOSO].read, server=links.url)
    no_key = cli("trace", digest, server=links.url)
    scope = cli("link", "pods", "-", "--cluster", "c", key=links.keys[CONTOSO].read,
                server=links.url, stdin='{"items": []}')  # fmt: skip
    bad_doc = cli("link", "pods", "-", "--cluster", "c", key="k", server=links.url, stdin="{")
    for done, code, text in (
        (unreachable, 3, "is not reachable"),
        (refused, 1, "refused the API key (401)"),
        (unknown, 4, "not found (404)"),
        (no_key, 2, "no API key"),
        (scope, 1, "(403)"),
        (bad_doc, 2, "not JSON"),
    ):
        assert done.returncode == code, (text, done.returncode, done.stderr)
        assert text in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr and "wrong" not in done.stderr


def test_link_registry_json_posts_nothing(registry_addr: str) -> None:
    repo = f"cmtest/cli-{uuid.uuid4().hex[:10]}"
    pusher = OciPusher(registry_addr)
    try:
        digest, _ = pusher.image(repo, {"org.opencontainers.image.revision": "c" * 40}, tag="t")
    finally:
        pusher.close()
    done = cli("link", "registry", f"http://{registry_addr}", "--repository", repo, "--json")
    assert done.returncode == 0, done.stderr
    crawl = json.loads(done.stdout)
    assert crawl["artifacts"][0]["digest"] == digest and crawl["repositories"] == [repo]

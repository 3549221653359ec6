"""One chain from three sources: a job's report, a registry crawl and a pod snapshot.

The report goes through the service's own route with a token the local issuer signed; the crawl
reads the real registry, where the test pushed an index of two platform manifests; the pod
document runs one platform digest. Every answer is validated against the documented schema.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from container_mapping.service.links.crawl import Crawler
from container_mapping.service.links.pods import running_containers
from tests.service.issuer import PROJECT_ID
from tests.service.links_fixtures import (  # noqa: F401 (the `links` fixture)
    CONTOSO,
    FABRIKAM,
    Service,
    check_answer,
    links_service,
    pushed,
)
from tests.service.oci_push import OciPusher
from tests.service.test_links_pods import pod

COMMIT = "0f3c9a7e1b2d4c6f8a0b1c2d3e4f5a6b7c8d9e0f"
LABELLED_COMMIT = "b" * 40


def _post_crawl(links: Service, registry: str, repositories: list[str]) -> None:
    with Crawler(registry) as crawler:
        crawl = crawler.crawl(repositories)
    with links.client(scope="link") as client:
        for body in crawl.batches():
            answer = client.post("/v1/links/registry", json=body)
            assert answer.status_code == 200, answer.text


def _post_pods(
    links: Service, cluster: str, objects: list[dict[str, Any]], org: str = CONTOSO
) -> Any:
    body = {"cluster": cluster, "takenAt": "2026-11-27T12:00:00Z",
            "containers": [c.to_dict() for c in running_containers(objects)]}  # fmt: skip
    with links.client(org, scope="link") as client:
        answer = client.post("/v1/links/pods", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _trace(links: Service, org: str = CONTOSO, **params: str) -> Any:
    with links.client(org) as client:
        return client.get("/v1/trace", params=params)


@pytest.fixture(name="chain")
def linked_chain(links: Service, registry_addr: str) -> dict[str, Any]:
    """An index (amd64 + arm64) pushed by run 1234; a labelled image nobody reported."""
    repo = f"cmtest/trace-{uuid.uuid4().hex[:10]}"
    pusher = OciPusher(registry_addr)
    try:
        index = pusher.index(repo, "v1", {})
        labelled, _ = pusher.image(repo, {
            "org.opencontainers.image.source": "https://github.com/contoso/tool",
            "org.opencontainers.image.revision": LABELLED_COMMIT,
        }, tag="tool")  # fmt: skip
        stray, _ = pusher.image(repo, {"nothing": "here"}, tag="stray")
    finally:
        pusher.close()
    links.report(CONTOSO, [pushed(f"{registry_addr}/{repo}:v1", index.index or "")])
    _post_crawl(links, registry_addr, [repo])
    amd64, arm64 = index.children["linux/amd64"], index.children["linux/arm64"]
    objects = [
        pod("web-5f6d8c9b7-x", ("ReplicaSet", "web-5f6d8c9b7"),
            [("app", f"{registry_addr}/{repo}:v1", f"{registry_addr}/{repo}@{amd64}")],
            init=[("tool", f"{registry_addr}/{repo}:tool",
                   f"docker-pullable://{registry_addr}/{repo}@{labelled}")],
            labels={"pod-template-hash": "5f6d8c9b7"}),
        pod("stray-0", ("StatefulSet", "stray"),
            [("app", f"{registry_addr}/{repo}:stray", f"{registry_addr}/{repo}@{stray}"),
             ("sidecar", "busybox", "docker://sha256:" + "c" * 64)]),
    ]  # fmt: skip
    linked = _post_pods(links, "prod-east", objects)
    assert linked["containers"] == 4 and linked["resolvable"] == 3
    return {"repo": repo, "index": index.index, "amd64": amd64, "arm64": arm64,
            "labelled": labelled, "stray": stray, "registry": registry_addr}  # fmt: skip


def test_a_platform_digest_a_node_runs_resolves_to_the_run_that_pushed_the_index(
    links: Service, chain: dict[str, Any]
) -> None:
    answer = _trace(links, digest=chain["amd64"])
    assert answer.status_code == 200, answer.text
    image = check_answer(answer.json())["images"][0]
    made = image["producedBy"][0]
    assert made["evidence"] == "report" and made["digest"] == chain["index"]
    assert made["run"] == {"id": "1234", "number": "20261127.1234"}
    assert made["commit"] == COMMIT and made["project"]["id"] == PROJECT_ID
    assert made["organization"] == {"id": CONTOSO, "name": "contoso"}
    assert made["pipeline"] == {"id": "42", "name": "web-app"}
    assert made["branch"] == "refs/heads/main" and made["job"]["name"] == "Build"
    assert {"digest": chain["index"], "relation": "index", "platform": None} in image["related"]
    stored = {(s["digest"], s["platform"], tuple(s["tags"])) for s in image["storedIn"]}
    assert (chain["index"], None, ("v1",)) in stored and (
        chain["amd64"],
        "linux/amd64",
        (),
    ) in stored
    [runs] = image["runsIn"]
    assert runs["cluster"] == "prod-east" and runs["namespace"] == "shop"
    assert runs["workload"] == {"kind": "Deployment", "name": "web", "inferred": True}
    assert runs["container"] == "app" and runs["containerKind"] == "regular"


def test_the_index_digest_names_both_platforms_and_the_workload(
    links: Service, chain: dict[str, Any]
) -> None:
    image = check_answer(_trace(links, digest=chain["index"]).json())["images"][0]
    platforms = {r["platform"]: r["digest"] for r in image["related"]}
    assert platforms == {"linux/amd64": chain["amd64"], "linux/arm64/v8": chain["arm64"]}
    assert [r["pod"] for r in image["runsIn"]] == ["web-5f6d8c9b7-x"]
    assert image["producedBy"][0]["run"]["id"] == "1234"


def test_the_other_platform_resolves_to_the_same_run_without_running_anywhere(
    links: Service, chain: dict[str, Any]
) -> None:
    image = check_answer(_trace(links, digest=chain["arm64"]).json())["images"][0]
    assert image["producedBy"][0]["run"]["id"] == "1234" and image["runsIn"] == []


def test_labels_map_an_image_no_run_reported_as_label_evidence(
    links: Service, chain: dict[str, Any]
) -> None:
    image = check_answer(_trace(links, digest=chain["labelled"]).json())["images"][0]
    [made] = image["producedBy"]
    assert made["evidence"] == "label" and made["commit"] == LABELLED_COMMIT
    assert made["repository"]["uri"] == "https://github.com/contoso/tool"
    assert image["runsIn"][0]["containerKind"] == "init"
    by_commit = check_answer(_trace(links, commit=LABELLED_COMMIT[:10]).json())
    assert [i["digest"] for i in by_commit["images"]] == [chain["labelled"]]


def test_reference_commit_repository_and_pipeline_questions(
    links: Service, chain: dict[str, Any]
) -> None:
    ref = f"{chain['registry']}/{chain['repo']}:v1"
    for params in (
        {"reference": ref},
        {"commit": COMMIT},
        {"commit": COMMIT[:8]},
        {"repository": "https://dev.azure.com/fabrikam/Contoso/_git/web-app"},
        {"repository": "https://dev.azure.com/fabrikam/Contoso/_git/web-app.git"},
        {"pipeline": "contoso/Contoso/42"},
        {"pipeline": f"contoso/{PROJECT_ID}/web-app"},
    ):
        answer = _trace(links, **params)
        assert answer.status_code == 200, (params, answer.text)
        digests = [i["digest"] for i in check_answer(answer.json())["images"]]
        assert digests == [chain["index"]], params
        assert answer.json()["images"][0]["runsIn"][0]["pod"] == "web-5f6d8c9b7-x"
    pinned = _trace(links, reference=f"{chain['registry']}/{chain['repo']}@{chain['amd64']}")
    assert pinned.json()["images"][0]["digest"] == chain["amd64"]


def test_unmapped_lists_what_no_run_produced(links: Service, chain: dict[str, Any]) -> None:
    answer = check_answer(_trace(links, unmapped="true").json())
    found = {(r["pod"], r["container"], r["resolvable"]) for r in answer["unmapped"]}
    assert found == {("stray-0", "app", True), ("stray-0", "sidecar", False)}
    assert _trace(links, unmapped="true", cluster="elsewhere").json()["unmapped"] == []


def test_another_organization_gets_404_exactly_as_for_an_unknown_digest(
    links: Service, chain: dict[str, Any]
) -> None:
    theirs = _trace(links, FABRIKAM, digest=chain["amd64"])
    unknown = _trace(links, FABRIKAM, digest="sha256:" + "9" * 64)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json() | {}
    assert _trace(links, FABRIKAM, unmapped="true").json()["unmapped"] == []
    assert _trace(links, FABRIKAM, commit=COMMIT).status_code == 404


def test_a_later_snapshot_replaces_the_earlier_one_for_that_cluster(
    links: Service, chain: dict[str, Any]
) -> None:
    _post_pods(links, "prod-west", [pod("w", None, [("app", "x", f"x@{chain['amd64']}")])])
    _post_pods(links, "prod-east", [pod("only", None, [("app", "x", f"x@{chain['stray']}")])])
    runs = _trace(links, digest=chain["amd64"]).json()["images"][0]["runsIn"]
    assert [(r["cluster"], r["pod"]) for r in runs] == [("prod-west", "w")]
    unmapped = _trace(links, unmapped="true").json()["unmapped"]
    assert [(r["cluster"], r["pod"]) for r in unmapped] == [("prod-east", "only")]


def test_a_crawl_replaces_its_repositories_only(links: Service, chain: dict[str, Any]) -> None:
    body = {"registry": chain["registry"], "crawledAt": "2026-11-27T13:00:00Z",
            "repositories": [chain["repo"]], "artifacts": []}  # fmt: skip
    with links.client(scope="link") as client:
        assert client.post("/v1/links/registry", json=body).status_code == 200
    index = _trace(links, digest=chain["index"]).json()["images"][0]
    assert [s["source"] for s in index["storedIn"]] == ["report"]  # what the run said it pushed
    assert index["related"] == []
    orphan = _trace(links, digest=chain["amd64"]).json()["images"][0]
    assert orphan["producedBy"] == [] and orphan["runsIn"]  # the platform link came from the crawl
    assert _trace(links, digest=chain["labelled"]).json()["images"][0]["producedBy"] == []


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({}, 422, "query"),
        ({"digest": "sha256:abc"}, 422, "digest"),
        ({"digest": "sha256:" + "1" * 64, "commit": "abcdef1"}, 422, "query"),
        ({"commit": "not-hex"}, 422, "commit"),
        ({"pipeline": "a/b"}, 422, "pipeline"),
        ({"unmapped": "true", "digest": "sha256:" + "1" * 64}, 422, "digest"),
        ({"unmapped": "maybe"}, 422, "unmapped"),
        ({"reference": "NOT A REF"}, 404, "reference"),
        ({"digest": "sha256:" + "1" * 64}, 404, "digest"),
    ],
)
def test_bad_questions_get_4xx_naming_the_parameter(
    links: Service, params: dict[str, str], status: int, field: str
) -> None:
    answer = _trace(links, **params)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field


def test_keys_and_scopes(links: Service) -> None:
    import httpx

    assert httpx.get(f"{links.url}/v1/trace", params={"unmapped": "true"}).status_code == 401
    with links.client(scope="link") as client:
        assert client.get("/v1/trace", params={"unmapped": "true"}).status_code == 403
    with links.client(scope="read") as client:
        body = {"cluster": "c", "takenAt": "2026-11-27T12:00:00Z", "containers": []}
        assert client.post("/v1/links/pods", json=body).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"cluster": "", "takenAt": "2026-11-27T12:00:00Z", "containers": []},
        {"cluster": "c", "takenAt": "yesterday", "containers": []},
        {"cluster": "c", "takenAt": "2026-11-27T12:00:00Z", "containers": [{"pod": "x"}]},
        {"cluster": "c", "takenAt": "2026-11-27T12:00:00Z",
         "containers": [{"namespace": "n", "pod": "p", "ownerKind": "Pod", "ownerName": "p",
                         "container": "c", "containerKind": "sidecar", "image": "i",
                         "resolvable": False}]},
    ],
)  # fmt: skip
def test_bad_snapshots_are_refused_and_change_nothing(
    links: Service, chain: dict[str, Any], body: dict[str, Any]
) -> None:
    with links.client(scope="link") as client:
        answer = client.post("/v1/links/pods", json=body)
    assert answer.status_code == 422 and answer.json()["field"]
    assert _trace(links, digest=chain["amd64"]).json()["images"][0]["runsIn"]

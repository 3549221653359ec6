"""`defender import` end to end: Resource Graph in the stand-in, the mapping service over HTTP,
`trace` as an operator runs it.

A job reports the image it pushed; Defender holds registry findings and a running-image row
for the same digest; after the import, `trace --json` gives one chain from the run through the
registry to the cluster with the finding counts, and the reverse question (the pipeline's
images) carries them too. A second import changes nothing; a changed or vanished finding
changes only its own record.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.defender.conftest import SUBSCRIPTION, cli_environment
from tests.defender.standin import (
    REGISTRY_KEY,
    RUNTIME_KEY,
    StandIn,
    cluster_id,
    finding,
    registry_id,
)
from tests.service.links_fixtures import (  # noqa: F401 (the `links` fixture)
    CONTOSO,
    FABRIKAM,
    Service,
    check_answer,
    links_service,
    pushed,
)

ACR = registry_id(SUBSCRIPTION, "rg-images", "contosoacr")
AKS = cluster_id(SUBSCRIPTION, "rg-prod", "aks-prod")
HOST = "contosoacr.azurecr.io"


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


API = digest("shop/api:1.0")
WORKER = digest("shop/worker:3")


def registry_row(cve: str, severity: str, image: str = API, **kw: Any) -> dict[str, Any]:
    repository = "shop/api" if image == API else "shop/worker"
    return finding(ACR, REGISTRY_KEY, cve, severity, registry=HOST, repository=repository,
                   digest=image, tags=kw.pop("tags", ["1.0"]), **kw)  # fmt: skip


def without_digest(row: dict[str, Any]) -> dict[str, Any]:
    row["properties"]["additionalData"]["artifactDetails"]["digest"] = "sha256:not-a-digest"
    return row


def running_row(cve: str, severity: str) -> dict[str, Any]:
    return finding(AKS, RUNTIME_KEY, cve, severity, registry=HOST, repository="shop/api",
                   digest=API, tags=["1.0"])  # fmt: skip


@pytest.fixture
def defender(arm: StandIn, links: Service) -> Iterator[StandIn]:
    arm.arm.plans[(SUBSCRIPTION, "Containers")] = "Standard"
    arm.arm.findings = [
        registry_row("CVE-2026-0001", "Critical"),
        registry_row("CVE-2026-0002", "High"),
        registry_row("CVE-2026-0003", "Medium", code="Healthy"),  # resolved: not counted
        registry_row("CVE-2026-0004", "High", tags=["latest"]),  # a second tag of the image
        *(registry_row(f"CVE-2026-01{i:02}", "Low", image=WORKER, tags=["3"]) for i in range(5)),
        without_digest(registry_row("CVE-2026-0009", "High")),
        running_row("CVE-2026-0001", "Critical"),
    ]
    links.report(CONTOSO, [pushed(f"{HOST}/shop/api:1.0", API)], run_id="5678",
                 run_number="20261127.7")  # fmt: skip
    yield arm


def run(*args: str, links: Service, key: str) -> subprocess.CompletedProcess[str]:
    env = {k: os.environ[k] for k in ("AZURE_RESOURCE_MANAGER_ENDPOINT", "REQUESTS_CA_BUNDLE",
                                      "CONTAINER_MAPPING_ARM_TOKEN")}  # fmt: skip
    env.update({"CONTAINER_MAPPING_SERVER": links.url, "CONTAINER_MAPPING_API_KEY": key})
    return subprocess.run(
        [sys.executable, "-m", "container_mapping", *args],
        capture_output=True, text=True, env=cli_environment(env), timeout=120, check=False,
    )  # fmt: skip


def import_(links: Service) -> str:
    done = run("defender", "import", "--subscription", SUBSCRIPTION, links=links,
               key=links.keys[CONTOSO].link)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def trace(links: Service, *question: str) -> dict[str, Any]:
    done = run("trace", *question, "--json", links=links, key=links.keys[CONTOSO].read)
    assert done.returncode == 0, done.stderr
    return check_answer(json.loads(done.stdout))


def changed_at(links: Service) -> dict[tuple[str, str], Any]:
    engine = create_engine(links.database)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT kind, digest, id, changed_at FROM defender_images"))
        found = {(r.kind, r.digest): (r.id, str(r.changed_at)) for r in rows}
    engine.dispose()
    return found


def test_one_chain_from_the_run_to_the_cluster_with_findings(
    defender: StandIn, links: Service
) -> None:
    said = import_(links)
    assert said == (
        "imported 2 images (2 added, 0 changed, 0 unchanged, 0 removed) and 1 running "
        "(1 added, 0 changed, 0 unchanged, 0 removed) from 11 findings in 4 pages; "
        "1 rows without a digest skipped"
    )
    answer = trace(links, API)
    [image] = answer["images"]
    [made] = image["producedBy"]
    assert made["run"] == {"id": "5678", "number": "20261127.7"}
    assert made["commit"] == "0f3c9a7e1b2d4c6f8a0b1c2d3e4f5a6b7c8d9e0f"
    part = image["defender"]
    assert part["findings"] == {"critical": 1, "high": 2, "medium": 0, "low": 0, "other": 0,
                                "total": 3}  # fmt: skip
    [registry] = part["registries"]
    assert (registry["name"], registry["registry"], registry["repository"]) == (
        "contosoacr", HOST, "shop/api",
    )  # fmt: skip
    assert registry["resourceId"] == ACR and registry["tags"] == ["1.0", "latest"]
    assert registry["lastPushed"] == "2026-11-27T10:15:32.8223098Z"
    [cluster] = part["clusters"]
    assert (cluster["name"], cluster["resourceId"]) == ("aks-prod", AKS)
    assert cluster["findings"]["critical"] == 1 and cluster["findings"]["total"] == 1


def test_the_reverse_question_and_the_terminal_and_the_page(
    defender: StandIn, links: Service
) -> None:
    import_(links)
    answer = trace(links, "--pipeline", "contoso/Contoso/42")
    [image] = answer["images"]
    assert image["digest"] == API and image["defender"]["findings"]["critical"] == 1
    done = run("trace", API, links=links, key=links.keys[CONTOSO].read)
    assert done.returncode == 0, done.stderr
    assert "Defender for Cloud: 1 critical, 2 high, 0 medium, 0 low" in done.stdout
    assert "aks-prod" in done.stdout and "contosoacr" in done.stdout
    page = httpx.get(f"{links.url}/page/trace", params={"digest": API},
                     headers={"X-API-Key": links.keys[CONTOSO].read}, timeout=30)  # fmt: skip
    assert page.status_code == 200
    assert "Open findings: 1 critical, 2 high, 0 medium, 0 low" in page.text
    assert "contosoacr.azurecr.io/shop/api" in page.text


def test_an_image_only_defender_knows_is_traced_too(defender: StandIn, links: Service) -> None:
    import_(links)
    [image] = trace(links, WORKER)["images"]
    assert image["producedBy"] == [] and image["defender"]["findings"]["low"] == 5


def test_a_second_import_changes_only_what_changed(defender: StandIn, links: Service) -> None:
    import_(links)
    before = changed_at(links)
    assert import_(links).startswith(
        "imported 2 images (0 added, 0 changed, 2 unchanged, 0 removed) and 1 running "
        "(0 added, 0 changed, 1 unchanged, 0 removed)"
    )
    assert changed_at(links) == before
    findings = defender.arm.findings
    findings.append(registry_row("CVE-2026-0005", "Low"))
    findings[:] = [f for f in findings if RUNTIME_KEY not in f["id"]]
    assert import_(links).startswith(
        "imported 2 images (0 added, 1 changed, 1 unchanged, 0 removed) and 0 running "
        "(0 added, 0 changed, 0 unchanged, 1 removed)"
    )
    after = changed_at(links)
    assert after[("registry", WORKER)] == before[("registry", WORKER)]
    assert after[("registry", API)][0] == before[("registry", API)][0]  # updated in place
    assert after[("registry", API)][1] != before[("registry", API)][1]
    assert ("cluster", API) not in after
    part = trace(links, API)["images"][0]["defender"]
    assert part["findings"]["low"] == 1 and part["clusters"] == []


def test_the_route_takes_records_of_its_own_scope_and_organization(
    defender: StandIn, links: Service
) -> None:
    import_(links)
    record = {"resourceId": ACR.replace(SUBSCRIPTION, "other"), "subscription": "other",
              "name": "x", "registry": HOST, "repository": "shop/api", "digest": API}  # fmt: skip
    body = {"importId": "6d1f2c3b-0a4e-4b5c-8d7e-1f2a3b4c5d6e", "subscriptions": [SUBSCRIPTION],
            "importedAt": "2026-11-27T12:00:00Z", "images": [record]}  # fmt: skip
    with links.client(CONTOSO, "link") as client:
        refused = client.post("/v1/links/defender", json=body)
    assert refused.status_code == 422 and refused.json()["field"] == "images[0].subscription"
    with links.client(CONTOSO, "read") as client:
        assert client.post("/v1/links/defender", json=body).status_code == 403
    with links.client(FABRIKAM, "read") as client:
        assert client.get("/v1/trace", params={"digest": WORKER}).status_code == 404
    assert trace(links, WORKER)["images"][0]["defender"]["findings"]["low"] == 5


def test_imports_at_once_never_fail_the_service(links: Service) -> None:
    from concurrent.futures import ThreadPoolExecutor

    records = [{"resourceId": ACR, "subscription": SUBSCRIPTION, "name": "contosoacr",
                "registry": HOST, "repository": "shop/api", "digest": digest(f"race/{i}"),
                "findings": {"high": i % 3}} for i in range(50)]  # fmt: skip

    def post(n: int) -> int:
        body = {"importId": f"6d1f2c3b-0a4e-4b5c-8d7e-1f2a3b4c5d{n:02x}",
                "subscriptions": [SUBSCRIPTION], "importedAt": "2026-11-27T12:00:00Z",
                "images": records, "complete": True}  # fmt: skip
        with links.client(CONTOSO, "link") as client:
            return client.post("/v1/links/defender", json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(post, range(8)))
    assert set(statuses) <= {200, 409} and 200 in statuses, statuses
    engine = create_engine(links.database)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM defender_images")).scalar_one()
    engine.dispose()
    assert stored == 50

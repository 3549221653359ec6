"""Ingestion over HTTP: what is stored, from whom, once; what is refused and changes nothing."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from container_mapping.defender import ingest
from container_mapping.model import MappingReport
from tests.service.conftest import CONTOSO, CONTOSO_READ_KEY, FABRIKAM, FABRIKAM_READ_KEY, Service
from tests.service.issuer import COMMIT, PROJECT_ID, REPOSITORY_URI
from tests.service.reports import report

DEFENDER_PATH = "/azuredevops/v1/container-mappings"


def stored_reports(service: Service) -> list[dict[str, Any]]:
    with service.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM reports ORDER BY received_at"))
        return [dict(row._mapping) for row in rows]


def test_a_report_is_stored_with_the_tokens_context(service: Service) -> None:
    token = service.issuer.token(CONTOSO, run_id="1234", rpo_ref="refs/heads/release")
    answer = service.post_report(report(CONTOSO, images=5), token, key="job-1")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["organization"] == CONTOSO and body["images"] == 5
    [row] = stored_reports(service)
    assert row["id"] == body["id"]
    assert row["org_id"] == CONTOSO
    assert (row["project_id"], row["pipeline_id"], row["run_id"]) == (PROJECT_ID, "42", "1234")
    assert (row["project_name"], row["pipeline_name"]) == ("Contoso", "web-app")
    assert row["repository_uri"] == REPOSITORY_URI and row["commit"] == COMMIT
    assert row["branch"] == "refs/heads/release"  # the token's ref, not the body's
    assert (row["run_number"], row["job_name"], row["protocol"]) == (
        "20261127.1", "Build", "mapping-service"
    )  # fmt: skip
    assert service.count("images") == 5
    read = service.client.get(f"/v1/reports/{body['id']}", headers={"X-API-Key": CONTOSO_READ_KEY})
    assert read.status_code == 200
    assert {i["repository"] for i in read.json()["images"]} == {f"shop/web-{i}" for i in range(5)}
    assert all(i["evidence"] == "observed" for i in read.json()["images"])


def test_the_same_key_twice_stores_once_and_answers_the_first_answer(service: Service) -> None:
    body = report(CONTOSO)
    first = service.post_report(body, service.issuer.token(CONTOSO), key="job-attempt-1")
    again = service.post_report(body, service.issuer.token(CONTOSO), key="job-attempt-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert service.count("reports") == 1 and service.count("images") == 5


def test_the_same_key_with_another_body_keeps_the_first_report(service: Service) -> None:
    token = service.issuer.token(CONTOSO)
    first = service.post_report(report(CONTOSO, seed="a"), token, key="k")
    again = service.post_report(report(CONTOSO, seed="b", job_name="again"), token, key="k")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert service.count("reports") == 1
    with service.engine.connect() as connection:
        assert connection.execute(text("SELECT job_name FROM reports")).scalar_one() == "Build"


def test_another_run_cannot_take_a_runs_key(service: Service) -> None:
    hostile = service.post_report(
        report(CONTOSO, run_id="666", seed="h"), service.issuer.token(CONTOSO, run_id="666"), "k"
    )
    mine = service.post_report(report(CONTOSO), service.issuer.token(CONTOSO), key="k")
    assert hostile.status_code == mine.status_code == 201
    assert hostile.json()["id"] != mine.json()["id"] and service.count("reports") == 2


def test_keys_are_per_organization(service: Service) -> None:
    body_c, body_f = report(CONTOSO), report(FABRIKAM)
    a = service.post_report(body_c, service.issuer.token(CONTOSO), key="same")
    b = service.post_report(body_f, service.issuer.token(FABRIKAM), key="same")
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


def test_a_resend_without_a_key_is_stored_once(service: Service) -> None:
    token, body = service.issuer.token(CONTOSO), report(CONTOSO)
    first = service.post_report(body, token)
    again = service.post_report(body, token)
    assert first.json() == again.json() and service.count("reports") == 1


def test_skipped_and_unpushed_images_are_never_stored(service: Service) -> None:
    body = report(CONTOSO, images=3)
    body["skipped"] = [dict(body["images"][0], repository="other/run")]
    body["images"][1]["pushed"] = False
    answer = service.post_report(body, service.issuer.token(CONTOSO), key="k")
    assert answer.status_code == 201 and answer.json()["images"] == 2
    with service.engine.connect() as connection:
        repos = {r for (r,) in connection.execute(text("SELECT repository FROM images"))}
    assert repos == {"shop/web-0", "shop/web-2"}


def test_skipped_may_be_absent(service: Service) -> None:
    body = report(CONTOSO, images=1)
    del body["skipped"]
    assert service.post_report(body, service.issuer.token(CONTOSO)).status_code == 201


def test_a_body_naming_another_run_or_organization_is_refused(service: Service) -> None:
    token = service.issuer.token(CONTOSO, run_id="1234")
    cases = {
        "runId": report(CONTOSO, run_id="9999"),
        "organizationId": report(CONTOSO, organization_id=FABRIKAM),
        "projectId": report(CONTOSO, project_id="00000000-0000-0000-0000-000000000000"),
        "definitionId": report(CONTOSO, definition_id="7"),
    }
    for name, body in cases.items():
        answer = service.post_report(body, token, key=name)
        assert answer.status_code == 403, answer.text
        assert answer.json()["field"] == f"pipeline.{name}"
        assert "another" in answer.json()["error"]
    assert service.count("reports") == 0


def test_defender_wire_format_is_stored_with_the_tokens_context(service: Service) -> None:
    built = MappingReport.from_dict(report(CONTOSO, images=2))
    body = ingest.body(built)
    body["dockerImages"].append(  # the host's other image: no push event names it
        "CreatedAt=2026-11-01 10:00:00 +0000 UTC::Repo=nginx::Tag=1::Digest=" + "sha256:" + "e" * 64
    )
    body["dockerImages"].append(
        "CreatedAt=2026-11-01 10:00:00 +0000 UTC::Repo=x::Tag=<none>::Digest=<none>"
    )
    answer = service.post_report(body, service.issuer.token(CONTOSO), path=DEFENDER_PATH)
    assert answer.status_code == 201, answer.text
    assert answer.json()["images"] == 2
    [row] = stored_reports(service)
    assert row["protocol"] == "defender" and row["run_id"] == "1234" and row["commit"] == COMMIT
    with service.engine.connect() as connection:
        rows = connection.execute(text("SELECT registry, repository, tag, digest FROM images"))
        stored = {tuple(r) for r in rows}
    expected = {(r.reference.registry, r.reference.repository, r.reference.tag, r.digest)
                for r in built.images}  # fmt: skip
    assert stored == expected
    again = service.post_report(body, service.issuer.token(CONTOSO), path=DEFENDER_PATH)
    assert again.status_code == 201 and service.count("reports") == 2  # a new token: a new send


def test_defender_resend_with_the_same_token_is_stored_once(service: Service) -> None:
    body = ingest.body(MappingReport.from_dict(report(CONTOSO, images=1)))
    token = service.issuer.token(CONTOSO)
    for _ in range(2):
        assert service.post_report(body, token, path=DEFENDER_PATH).status_code == 201
    assert service.count("reports") == 1


def test_malformed_defender_lines_are_422_naming_the_line(service: Service) -> None:
    body = {"dockerVersion": "26", "dockerEvents": ["ID=app:1"], "dockerImages": ["Repo=app"]}
    answer = service.post_report(body, service.issuer.token(CONTOSO), path=DEFENDER_PATH)
    assert answer.status_code == 422 and answer.json()["field"] == "dockerImages[0]"
    assert service.count("reports") == 0


def test_another_organizations_report_reads_as_unknown(service: Service) -> None:
    answer = service.post_report(report(CONTOSO), service.issuer.token(CONTOSO), key="k")
    report_id = answer.json()["id"]
    other = service.client.get(f"/v1/reports/{report_id}", headers={"X-API-Key": FABRIKAM_READ_KEY})
    missing = service.client.get("/v1/reports/nope", headers={"X-API-Key": FABRIKAM_READ_KEY})
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


def test_bad_bodies_are_4xx_naming_the_field_and_change_nothing(service: Service) -> None:
    token = service.issuer.token(CONTOSO)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = report(CONTOSO, images=1)
    bad_digest = json.loads(json.dumps(good))
    bad_digest["images"][0]["digest"] = "sha256:XYZ"
    wrong_major = dict(good, schemaVersion="2.0")
    no_window = {k: v for k, v in good.items() if k != "window"}
    # Unicode letters and digits: JSON Schema's `\w` and `\d` (and Docker's) are ASCII
    letter_tag = json.loads(json.dumps(good))
    letter_tag["images"][0]["tag"] = "v\u00e9"
    arabic_digits = dict(good, generatedAt="\u0662026-11-27T10:00:00Z")
    cases = [
        (b"{not json", 422, None),
        (b"[]", 422, None),
        (json.dumps(bad_digest).encode(), 422, "images[0].digest"),
        (json.dumps(wrong_major).encode(), 422, "schemaVersion"),
        (json.dumps(no_window).encode(), 422, "window"),
        (json.dumps(letter_tag).encode(), 422, "images[0].tag"),
        (json.dumps(arabic_digits).encode(), 422, "generatedAt"),
        (b"\xff\xfe", 422, None),
        (b"", 422, None),
    ]
    for body, status, field in cases:
        answer = service.client.post("/v1/reports", content=body, headers=headers)
        assert answer.status_code == status, (body[:40], answer.text)
        assert answer.json()["field"] == field, (body[:40], answer.json())
        assert answer.json()["error"]
    big = b'{"x":"' + b"a" * (1024 * 1024) + b'"}'
    answer = service.client.post("/v1/reports", content=big, headers=headers)
    assert answer.status_code == 413 and "larger" in answer.json()["error"]
    chunked = service.client.post("/v1/reports", content=iter([big[:600_000], big[600_000:]]),
                                  headers=headers)  # fmt: skip
    assert chunked.status_code == 413
    assert service.count("reports") == 0 and service.count("images") == 0


def test_a_bad_idempotency_key_is_422(service: Service) -> None:
    answer = service.post_report(report(CONTOSO), service.issuer.token(CONTOSO), key="x" * 300)
    assert answer.status_code == 422 and answer.json()["field"] == "Idempotency-Key"


def test_healthz(service: Service) -> None:
    assert service.client.get("/healthz").json()["status"] == "ok"


def test_many_at_once_store_each_report_once(service: Service) -> None:
    """Concurrent deliveries: on SQLite they share group commits, and a repeated key in one
    batch sends the batch down the one-by-one path."""
    bodies = [report(CONTOSO, images=2, seed=f"c{i}") for i in range(12)]
    token = service.issuer.token(CONTOSO)

    def send(i: int) -> httpx.Response:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{i % 6}"}
            return client.post("/v1/reports", json=bodies[i % 6], headers=headers)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    for i in range(6):
        assert answers[i].json() == answers[i + 6].json()
    assert service.count("reports") == 6 and service.count("images") == 12


def test_report_ids_are_uuid7_in_the_order_they_were_stored(service: Service) -> None:
    ids = []
    for n in range(3):
        answer = service.post_report(
            report(CONTOSO, seed=f"ordered-{n}"), service.issuer.token(CONTOSO)
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
        time.sleep(0.002)  # the order is by millisecond
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)  # as text too: the index's order


def test_a_body_that_is_not_declared_json_is_422(service: Service) -> None:
    token = service.issuer.token(CONTOSO)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        answer = service.client.post(
            "/v1/reports",
            content=json.dumps(report(CONTOSO)).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        )
        assert answer.status_code == 422, answer.text
        assert "Content-Type: application/json" in answer.json()["error"]
    assert service.count("reports") == 0


def test_the_openapi_document_describes_the_bodies_routes_read_themselves(
    service: Service,
) -> None:
    document = service.client.get("/openapi.json").json()
    for path, model in (("/v1/reports", "ReportIn"), (DEFENDER_PATH, "DefenderIn")):
        operation = document["paths"][path]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
        assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
    schemas = document["components"]["schemas"]
    assert {"ReportIn", "ImageIn", "PipelineIn", "DefenderIn"} <= set(schemas)
    assert schemas["ImageIn"]["properties"]["digest"]["anyOf"][0]["pattern"].startswith("^sha256")

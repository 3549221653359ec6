"""Defender's wire format, the OIDC token client and the two sinks, against a local server."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest

from container_mapping.context import from_environment
from container_mapping.defender import ingest
from container_mapping.defender.oidc import OidcTokenClient, TokenError, access_token, token_url
from container_mapping.http import HttpClient, RetryPolicy
from container_mapping.model import CollectionWindow, ImageRecord, MappingReport, PipelineContext
from container_mapping.reference import ImageReference
from container_mapping.sinks.defender import DefenderSink
from container_mapping.sinks.interface import SinkError
from container_mapping.sinks.mapping_service import MappingServiceSink, idempotency_key
from tests.e2e.shim import ACCESS_TOKEN, pipeline_env
from tests.e2e.stubs import AzureStub, Behaviour, closed_port_url

DIGEST = "sha256:" + "d" * 64
IMAGE_ID = "sha256:" + "e" * 64
WHEN = datetime(2026, 11, 27, 9, 20, 59, 123456, tzinfo=timezone.utc)
FAST = RetryPolicy(attempts=3, backoff=0.01)


def _record(text: str, pushed: bool = True, created: datetime | None = WHEN) -> ImageRecord:
    return ImageRecord(
        ImageReference.parse(text), IMAGE_ID, pushed, created=created, pushed_at=WHEN
    )


def _report(*records: ImageRecord, context: PipelineContext | None = None) -> MappingReport:
    window = CollectionWindow(WHEN, WHEN)
    return MappingReport(
        window, context or PipelineContext(), tuple(records), engine_version="27.3.1"
    )


def test_body_lists_only_pushed_images_in_docker_formats() -> None:
    report = _report(
        _record(f"127.0.0.1:5000/app:1@{DIGEST}"),
        _record(f"nginx:1@{DIGEST}"),
        _record("127.0.0.1:5000/built-only:1", pushed=False),
    )
    assert ingest.body(report) == {
        "dockerVersion": "27.3.1",
        "dockerEvents": ["ID=127.0.0.1:5000/app:1", "ID=nginx:1"],
        "dockerImages": [
            "CreatedAt=2026-11-27 09:20:59 +0000 UTC::Repo=127.0.0.1:5000/app::Tag=1"
            f"::Digest={DIGEST}",
            f"CreatedAt=2026-11-27 09:20:59 +0000 UTC::Repo=nginx::Tag=1::Digest={DIGEST}",
        ],
    }


def test_lines_for_a_digest_only_push_and_a_missing_digest() -> None:
    by_digest = _record(f"docker.io/team/api@{DIGEST}", created=None)
    assert ingest.event_line(by_digest) == f"ID=team/api@{DIGEST}"
    line = ingest.image_line(by_digest, WHEN)
    assert (
        line
        == f"CreatedAt=2026-11-27 09:20:59 +0000 UTC::Repo=team/api::Tag=<none>::Digest={DIGEST}"
    )
    assert ingest.image_line(_record("r.example/a:2"), WHEN).endswith("::Tag=2::Digest=<none>")


def test_go_time_is_utc() -> None:
    from datetime import timedelta

    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert re.fullmatch(r"2026-11-27 09:20:59 \+0000 UTC", ingest.go_time(local))


def _context(stub: AzureStub) -> PipelineContext:
    return from_environment(pipeline_env(stub.collection_uri))


def test_access_token_sources() -> None:
    assert access_token({"SYSTEM_ACCESSTOKEN": " b "}) == "b"
    assert (
        access_token(
            {
                "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN": "a",
                "SYSTEM_ACCESSTOKEN": "b",
            }
        )
        == "a"
    )
    assert access_token({}) is None


def test_token_url_needs_the_job_variables() -> None:
    with pytest.raises(TokenError, match="SYSTEM_PLANID, SYSTEM_JOBID not set"):
        token_url(
            PipelineContext(
                organization_url="https://dev.azure.com/o/", project_id="p", host_type="build"
            )
        )


def test_token_is_returned() -> None:
    with AzureStub() as stub:
        token = OidcTokenClient(HttpClient(retry=FAST)).request(_context(stub), ACCESS_TOKEN, None)
    assert token == stub.behaviour.oidc_token


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("redirect", "redirected (HTTP 302)"),
        ("401", "refused the job access token (HTTP 401)"),
        ("403", "refused the job access token (HTTP 403)"),
        ("500", "answered HTTP 500"),
        ("not-json", "without an oidcToken"),
        ("hang", "did not answer"),
    ],
)
def test_token_failures_name_cause_and_fix(mode: str, expected: str) -> None:
    with AzureStub(Behaviour(token=mode)) as stub:
        client = OidcTokenClient(HttpClient(timeout=0.5, retry=FAST))
        with pytest.raises(TokenError) as caught:
            client.request(_context(stub), ACCESS_TOKEN, time.monotonic() + 1.0)
    message = str(caught.value)
    assert expected in message
    assert ACCESS_TOKEN not in message and stub.behaviour.oidc_token not in message
    if mode == "500":
        assert len(stub.requests_to("/oidctoken")) == FAST.attempts
    else:
        assert "job authorization scope" in message


def test_no_access_token_is_a_clear_error() -> None:
    with AzureStub() as stub:
        with pytest.raises(TokenError, match="no job access token"):
            OidcTokenClient(HttpClient()).request(_context(stub), None, None)
        assert stub.received == []


def test_idempotency_key_is_stable_per_attempt() -> None:
    a = PipelineContext(plan_id="p", job_id="j", job_attempt="1")
    assert idempotency_key(a) == idempotency_key(
        PipelineContext(plan_id="p", job_id="j", job_attempt="1")
    )
    assert idempotency_key(a) != idempotency_key(
        PipelineContext(plan_id="p", job_id="j", job_attempt="2")
    )
    assert idempotency_key(a) != idempotency_key(
        PipelineContext(plan_id="p", job_id="k", job_attempt="1")
    )
    assert idempotency_key(PipelineContext(job_id="j")) is None


def _token(deadline: float | None) -> str:
    return "oidc-from-test"


def test_mapping_service_posts_the_report_with_key_and_token() -> None:
    with AzureStub() as stub:
        context = _context(stub)
        sink = MappingServiceSink(stub.ingest_url, HttpClient(retry=FAST), _token)
        delivery = sink.send(
            _report(_record(f"127.0.0.1:5000/app:1@{DIGEST}"), context=context), None
        )
    (sent,) = stub.received
    assert delivery.status == 200 and delivery.images == 1
    assert sent.headers["Authorization"] == "Bearer oidc-from-test"
    assert sent.headers["Idempotency-Key"] == idempotency_key(context)
    assert sent.json()["images"][0]["digest"] == DIGEST


@pytest.mark.parametrize(("plan_id", "attempts"), [("plan", FAST.attempts), (None, 1)])
def test_mapping_service_retries_a_post_only_with_an_idempotency_key(
    plan_id: str | None, attempts: int
) -> None:
    context = PipelineContext(plan_id=plan_id, job_id="job", job_attempt="1")
    with AzureStub(Behaviour(ingest="500")) as stub:
        sink = MappingServiceSink(stub.ingest_url, HttpClient(retry=FAST), _token)
        with pytest.raises(SinkError, match="HTTP 500"):
            sink.send(_report(_record(f"127.0.0.1:5000/app:1@{DIGEST}"), context=context), None)
    assert len(stub.received) == attempts


def test_defender_sink_reports_refused_connections() -> None:
    sink = DefenderSink(closed_port_url(), HttpClient(retry=FAST), _token)
    with pytest.raises(SinkError, match="not delivered"):
        sink.send(_report(_record(f"127.0.0.1:5000/app:1@{DIGEST}")), time.monotonic() + 2)


def test_protocol_choices_match_the_sink_protocols() -> None:
    from container_mapping import task
    from container_mapping.sinks.interface import SinkProtocol

    assert task.PROTOCOLS == tuple(p.value for p in SinkProtocol)

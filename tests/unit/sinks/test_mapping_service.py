"""The mapping-service sink: the report with an idempotency key, retried only with one."""

from __future__ import annotations

import pytest

from container_mapping.context import from_environment
from container_mapping.http import HttpClient
from container_mapping.model import PipelineContext
from container_mapping.sinks.interface import SinkError
from container_mapping.sinks.mapping_service import MappingServiceSink, idempotency_key
from tests.e2e.shim import pipeline_env
from tests.e2e.stubs import AzureStub, Behaviour
from tests.unit.samples import DIGEST, FAST, oidc_token, record, report


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


def test_mapping_service_posts_the_report_with_key_and_token() -> None:
    with AzureStub() as stub:
        context = from_environment(pipeline_env(stub.collection_uri))
        sink = MappingServiceSink(stub.ingest_url, HttpClient(retry=FAST), oidc_token)
        delivery = sink.send(
            report(record(f"127.0.0.1:5000/app:1@{DIGEST}"), context=context), None
        )
    (sent,) = stub.received
    assert delivery.endpoint == stub.ingest_url
    assert sent.headers["Authorization"] == "Bearer oidc-from-test"
    assert sent.headers["Idempotency-Key"] == idempotency_key(context)
    assert sent.json()["images"][0]["digest"] == DIGEST


@pytest.mark.parametrize(("plan_id", "attempts"), [("plan", FAST.attempts), (None, 1)])
def test_mapping_service_retries_a_post_only_with_an_idempotency_key(
    plan_id: str | None, attempts: int
) -> None:
    context = PipelineContext(plan_id=plan_id, job_id="job", job_attempt="1")
    with AzureStub(Behaviour(ingest="500")) as stub:
        sink = MappingServiceSink(stub.ingest_url, HttpClient(retry=FAST), oidc_token)
        with pytest.raises(SinkError, match="HTTP 500"):
            sink.send(report(record(f"127.0.0.1:5000/app:1@{DIGEST}"), context=context), None)
    assert len(stub.received) == attempts

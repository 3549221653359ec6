"""The job's access token, and the OIDC token Azure DevOps exchanges it for, against a stub."""

from __future__ import annotations

import time

import pytest

from container_mapping.azdo.oidc import OidcTokenClient, TokenError, access_token, token_url
from container_mapping.context import from_environment
from container_mapping.http import HttpClient
from container_mapping.model import PipelineContext
from tests.e2e.shim import ACCESS_TOKEN, pipeline_env
from tests.e2e.stubs import AzureStub, Behaviour
from tests.unit.samples import FAST


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

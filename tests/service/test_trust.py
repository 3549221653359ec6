"""Trust over HTTP: which tokens and keys the service refuses, and what it answers then."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest

from tests.service.conftest import (
    CONTOSO,
    CONTOSO_LINK_KEY,
    CONTOSO_READ_KEY,
    FABRIKAM,
    Service,
)
from tests.service.issuer import SigningKey
from tests.service.reports import report


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def crafted(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A JWT put together by hand, the way an attacker would."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{_b64(signature)}"


def refused(service: Service, token: str | None, status: int = 401) -> dict[str, Any]:
    answer = service.post_report(report(CONTOSO, images=1), token)
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert service.count("reports") == 0
    return dict(answer.json())


def test_a_valid_pipeline_token_is_accepted(service: Service) -> None:
    assert service.post_report(report(CONTOSO), service.issuer.token(CONTOSO)).status_code == 201


def test_missing_and_malformed_tokens(service: Service) -> None:
    assert "required" in refused(service, None)["error"]
    assert "not a JWT" in refused(service, "not-a-jwt")["error"]


def test_expired_and_not_yet_valid_tokens(service: Service) -> None:
    now = int(time.time())
    expired = service.issuer.token(CONTOSO, exp=now - 120, nbf=now - 900, iat=now - 600)
    assert "expired" in refused(service, expired)["error"]
    early = service.issuer.token(CONTOSO, nbf=now + 120)
    assert "not valid yet" in refused(service, early)["error"]
    within_leeway = service.issuer.token(CONTOSO, exp=now - 5)
    answer = service.post_report(report(CONTOSO), within_leeway)
    assert answer.status_code == 201


def test_wrong_audience(service: Service) -> None:
    token = service.issuer.token(CONTOSO, aud="api://something-else")
    assert "audience" in refused(service, token)["error"]


def test_wrong_issuer_for_the_organization(service: Service) -> None:
    token = service.issuer.token(CONTOSO, iss=service.issuer.issuer(FABRIKAM))
    assert "issuer" in refused(service, token)["error"]


def test_an_organization_not_configured_here(service: Service) -> None:
    stranger = str(uuid.uuid4())
    assert "not configured" in refused(service, service.issuer.token(stranger))["error"]


def test_one_organizations_token_cannot_write_for_another(service: Service) -> None:
    # Same key set for everyone: a genuine fabrikam token whose org_id was the only change
    # would need a new signature, so an attacker's best is fabrikam's real token, which then
    # names contoso in its body.
    token = service.issuer.token(FABRIKAM)
    answer = service.post_report(report(CONTOSO), token)
    assert answer.status_code == 403 and answer.json()["field"] == "pipeline.organizationId"
    assert service.count("reports") == 0


def test_alg_none_is_refused(service: Service) -> None:
    claims = service.issuer.claims(CONTOSO)
    token = crafted({"alg": "none", "typ": "JWT", "kid": service.issuer.keys[0].kid}, claims)
    assert "'none'" in refused(service, token)["error"]


def test_hmac_signed_with_the_public_key_is_refused(service: Service) -> None:
    key = service.issuer.keys[0]
    claims = service.issuer.claims(CONTOSO)

    def sign(data: bytes) -> bytes:
        return hmac.new(key.public_pem, data, hashlib.sha256).digest()

    token = crafted({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims, sign)
    assert "'HS256'" in refused(service, token)["error"]
    also_rs256_header = crafted({"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, sign)
    assert "signature" in refused(service, also_rs256_header)["error"]


def test_a_tampered_token_is_refused(service: Service) -> None:
    head, body, signature = service.issuer.token(CONTOSO).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["run_id"] = "9999"
    forged = f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert "signature" in refused(service, forged)["error"]


def test_unknown_kid_is_refused_until_the_key_set_publishes_it(service: Service) -> None:
    issuer = service.issuer
    assert service.post_report(report(CONTOSO), issuer.token(CONTOSO)).status_code == 201
    rotated = SigningKey.generate()
    token = issuer.token(CONTOSO, key=rotated)
    time.sleep(0.6)  # past the refresh interval of the test configuration (0.5 s)
    assert "key id" in refused_count(service, token)["error"]
    fetches = issuer.jwks_fetches
    for _ in range(20):  # a stream of unknown key ids does not become a stream of fetches
        service.post_report(report(CONTOSO, seed="x"), issuer.token(CONTOSO, key=rotated))
    assert issuer.jwks_fetches - fetches <= 1
    issuer.keys.append(rotated)
    try:
        time.sleep(0.6)
        answer = service.post_report(report(CONTOSO, seed="rotated"), token)
        assert answer.status_code == 201, answer.text
    finally:
        issuer.keys.remove(rotated)


def refused_count(service: Service, token: str) -> dict[str, Any]:
    answer = service.post_report(report(CONTOSO, seed="unknown-kid"), token)
    assert answer.status_code == 401, answer.text
    return dict(answer.json())


def test_service_connection_tokens_may_not_write(service: Service) -> None:
    pipeline_claims = ("prj_id", "def_id", "run_id", "rpo_uri", "rpo_ver", "rpo_ref", "rpo_id")
    claims: dict[str, Any] = dict.fromkeys(pipeline_claims)
    claims["sub"] = "sc://fabrikam/Contoso/deploy-connection"
    token = service.issuer.token(CONTOSO, **claims)
    assert "pipeline tokens" in refused(service, token, 403)["error"]


def test_an_unreachable_key_set_is_503_with_retry_after(service: Service) -> None:
    service.issuer.down = True
    try:
        hits = service.issuer.hits
        answers = [
            service.post_report(report(CONTOSO), service.issuer.token(CONTOSO)) for _ in range(10)
        ]
        assert service.issuer.hits - hits <= 2  # a dead issuer is not asked on every request
    finally:
        service.issuer.down = False
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "7"
    assert service.count("reports") == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": "not-a-key"}, 401),
        ({"X-API-Key": CONTOSO_LINK_KEY}, 403),  # a key without the read scope
        ({"Authorization": f"Bearer {CONTOSO_READ_KEY}"}, 404),  # accepted: no such report
        ({"X-API-Key": CONTOSO_READ_KEY}, 404),
    ],
)
def test_reads_need_an_api_key_with_the_read_scope(
    service: Service, headers: dict[str, str], status: int
) -> None:
    answer = service.client.get("/v1/reports/unknown", headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]


def test_a_pipeline_token_is_not_an_api_key(service: Service) -> None:
    headers = {"Authorization": f"Bearer {service.issuer.token(CONTOSO)}"}
    assert service.client.get("/v1/reports/unknown", headers=headers).status_code == 401


def test_an_api_key_cannot_write(service: Service) -> None:
    answer = service.post_report(report(CONTOSO), CONTOSO_READ_KEY)
    assert answer.status_code == 401

"""Azure DevOps pipeline tokens, verified with PyJWT against the organization's pinned issuer.

The order matters. The header must say RS256 (never `none`, never HMAC, whose "secret" an
attacker would pick as the public key). The organization is looked up by the unverified
`org_id`, then everything is verified against *that* organization's configuration: signature
by a key of its issuer's key set, `iss`, `aud`, `exp`/`nbf` with a small leeway, and `org_id`
again. Azure DevOps signs every organization's tokens with the same keys, so a valid signature
alone says nothing about which organization a token belongs to.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import jwt

from container_mapping.service.config import Settings
from container_mapping.service.errors import ServiceError, forbidden, unauthorized
from container_mapping.service.trust.jwks import KeyRing, KeysUnavailable, UnknownKey
from container_mapping.service.trust.models import PipelineCaller

ALGORITHM = "RS256"
REQUIRED = ["exp", "nbf", "iss", "aud", "sub"]
PIPELINE_CLAIMS = ("org_id", "prj_id", "def_id", "run_id")
MAX_TOKEN = 16 * 1024  # Azure DevOps tokens are about 1.5 KB
_PIPELINE_SUBJECT = re.compile(r"p://(?P<org>[^/]+)/(?P<project>[^/]+)/(?P<pipeline>.+)")


def verify(token: str, settings: Settings, keys: KeyRing, fetch: bool = True) -> dict[str, Any]:
    """The verified claims of `token`, or a `ServiceError` (401, or 503 when keys are down).

    With `fetch=False` it never waits on the network: a key not already cached raises
    `NotCached`, and the caller verifies again off the event loop.
    """
    header, unverified = _unverified(token)
    if header.get("alg") != ALGORITHM:
        raise unauthorized(f"tokens signed with {str(header.get('alg'))[:16]!r} are refused")
    org = settings.organization(str(unverified.get("org_id") or ""))
    if org is None:
        raise unauthorized("the token's organization (org_id) is not configured on this service")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise unauthorized("the token's header names no key id (kid)")
    try:
        key = keys.key(org.issuer, kid, fetch=fetch)
    except UnknownKey as err:
        raise unauthorized(str(err)) from err
    except KeysUnavailable as err:
        raise ServiceError(
            503,
            "the token issuer's keys cannot be fetched right now; retry later",
            headers={"Retry-After": str(settings.trust.retry_after)},
        ) from err
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=org.audience,
            issuer=org.issuer,
            leeway=settings.trust.leeway,
            options={"require": REQUIRED},
        )
    except jwt.PyJWTError as err:
        raise unauthorized(f"the token was refused: {_reason(err)}") from err
    if str(claims.get("org_id", "")).lower() != org.id:
        raise unauthorized("the token's org_id is not its issuer's organization")
    return claims


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, unverified: only to choose the organization and key that verify it.

    Read with the standard library: PyJWT's unverified decode checks every character of every
    segment in Python (about 170 µs a token), then its verifying decode does all of it again.
    Nothing read here is trusted; `jwt.decode` below verifies the whole token.
    """
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN:
        raise unauthorized("the bearer token is not a JWT")
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, binascii.Error):
        raise unauthorized("the bearer token is not a JWT") from None
    if not isinstance(header, dict):
        raise unauthorized("the bearer token is not a JWT")
    if not isinstance(claims, dict):
        raise unauthorized("the bearer token's claims are not a JSON object")
    return header, claims


def pipeline_caller(claims: dict[str, Any]) -> PipelineCaller:
    """The job a verified token speaks for; only pipeline (`p://`) tokens may write."""
    subject = str(claims.get("sub", ""))
    match = _PIPELINE_SUBJECT.fullmatch(subject)
    if match is None:
        raise forbidden(
            "only pipeline tokens (subject p://organization/project/pipeline) may report; "
            "this token's subject is of another kind (a service connection?)"
        )
    missing = [name for name in PIPELINE_CLAIMS if not str(claims.get(name) or "")]
    if missing:
        raise forbidden(f"the pipeline token lacks the claim {missing[0]}")
    return PipelineCaller(
        org_id=str(claims["org_id"]).lower(),
        project_id=str(claims["prj_id"]),
        pipeline_id=str(claims["def_id"]),
        run_id=str(claims["run_id"]),
        repository_uri=_optional(claims.get("rpo_uri")),
        commit=_optional(claims.get("rpo_ver")),
        ref=_optional(claims.get("rpo_ref")),
        subject=subject,
        organization_name=match["org"],
        project_name=match["project"],
        pipeline_name=match["pipeline"],
        token_id=_optional(claims.get("jti")),
    )


def _optional(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _reason(err: jwt.PyJWTError) -> str:
    if isinstance(err, jwt.ExpiredSignatureError):
        return "it has expired"
    if isinstance(err, jwt.ImmatureSignatureError):
        return "it is not valid yet (nbf)"
    if isinstance(err, jwt.InvalidAudienceError):
        return "wrong audience (aud)"
    if isinstance(err, jwt.InvalidIssuerError):
        return "wrong issuer (iss) for its organization"
    if isinstance(err, jwt.MissingRequiredClaimError):
        return f"the claim {err.claim} is missing"
    if isinstance(err, jwt.InvalidSignatureError):
        return "bad signature"
    return "it is malformed"

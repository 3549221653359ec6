"""Azure Resource Manager for the `defender` commands: which cloud, which credential, which fix.

The endpoint is configurable because sovereign clouds have their own (and because tests point the
SDKs at a local stand-in the same way); the token's scope follows the endpoint. A credential
comes from azure-identity's usual sources, or, for machines with none of them, from a bearer
token in `CONTAINER_MAPPING_ARM_TOKEN`. ARM's refusals reach the user as one line each, naming
the cause and the fix, never a traceback and never the token.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from container_mapping.errors import ApiError, ConfigError

ENDPOINT_ENVS = ("CONTAINER_MAPPING_ARM_ENDPOINT", "AZURE_RESOURCE_MANAGER_ENDPOINT")
SCOPE_ENV = "CONTAINER_MAPPING_ARM_SCOPE"
TOKEN_ENV = "CONTAINER_MAPPING_ARM_TOKEN"  # noqa: S105 (a variable name)
PUBLIC = "https://management.azure.com"
RETRIES = 3

# host -> (token scope, sign-in authority): the clouds azure-mgmt-core itself knows
KNOWN_CLOUDS = {
    "management.azure.com": ("https://management.azure.com/.default", "login.microsoftonline.com"),
    "management.chinacloudapi.cn": (
        "https://management.chinacloudapi.cn/.default",
        "login.chinacloudapi.cn",
    ),
    "management.usgovcloudapi.net": (
        "https://management.core.usgovcloudapi.net/.default",
        "login.microsoftonline.us",
    ),
}


class DefenderError(ApiError):
    """Defender for Cloud or ARM refused or failed; the message names the fix."""


@dataclass(frozen=True)
class Cloud:
    endpoint: str
    scope: str
    authority: str | None = None


def cloud(endpoint: str | None, environ: Mapping[str, str]) -> Cloud:
    """The cloud of `--arm-endpoint`, else of the environment, else Azure's public cloud."""
    given = endpoint or next((environ[n] for n in ENDPOINT_ENVS if environ.get(n)), PUBLIC)
    parts = urlsplit(given.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            f"the Resource Manager endpoint must be an https:// URL, not {given!r} "
            "(bearer tokens travel over TLS only)"
        )
    base = f"https://{parts.netloc}"
    scope, authority = KNOWN_CLOUDS.get(parts.hostname.lower(), (f"{base}/.default", None))
    return Cloud(base, environ.get(SCOPE_ENV) or scope, authority)


class StaticTokenCredential:
    """A `TokenCredential` for a bearer token handed over in the environment.

    For agents and containers where azure-identity finds no source; the token's own `exp`
    tells when it runs out, so an expired one fails before any request with the fix.
    """

    def __init__(self, token: str) -> None:
        self._token = token.strip()
        self._expires_on = _expiry(self._token)
        if self._expires_on <= time.time():
            raise DefenderError(
                f"the token in {TOKEN_ENV} has expired: get a new one "
                "(az account get-access-token --query accessToken -o tsv)"
            )

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, self._expires_on)


def _expiry(token: str) -> int:
    """The JWT's `exp`, or an hour from now for a token that is not a readable JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return int(time.time()) + 3600


def credential(where: Cloud, environ: Mapping[str, str]) -> Any:
    """The token in `CONTAINER_MAPPING_ARM_TOKEN`, else azure-identity's default chain."""
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    options: dict[str, Any] = {"exclude_interactive_browser_credential": True}
    if where.authority:
        options["authority"] = where.authority
    return DefaultAzureCredential(**options)


def client_options(where: Cloud) -> dict[str, Any]:
    """Keyword arguments every management client takes: base URL, scope, our User-Agent."""
    from container_mapping import USER_AGENT

    return {
        "base_url": where.endpoint,
        "credential_scopes": [where.scope],
        "user_agent": USER_AGENT,
        "polling_interval": 5,  # without Retry-After; ARM's operations here take seconds
        "retry_total": RETRIES,  # azure-core's default of 10 keeps a throttled user waiting
    }


# ---------------------------------------------------------------- errors as users meet them


@contextmanager
def explained(doing: str, subscription: str | None = None) -> Iterator[None]:
    """Turn azure-core and azure-identity exceptions raised while `doing` into one line."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    try:
        yield
    except HttpResponseError as err:
        if err.response is None:  # a credential that could not get a token
            raise DefenderError(_sign_in_message(doing)) from err
        raise DefenderError(_http_message(err, doing, subscription), err.status_code) from err
    except ServiceRequestError as err:
        raise DefenderError(
            f"{doing}: Azure Resource Manager is not reachable ({type(err).__name__}); "
            "check the network, a proxy, or --arm-endpoint"
        ) from err


def _sign_in_message(doing: str) -> str:
    return (
        f"{doing}: no Azure credential: run `az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID "
        f"with a secret or federated token, use a managed identity, or give a token in {TOKEN_ENV}"
    )


def _http_message(err: Any, doing: str, subscription: str | None) -> str:
    status = err.status_code
    code = _error_code(err)
    headers = err.response.headers if err.response is not None else {}
    sub = f"subscription {subscription}" if subscription else "the subscription"
    if status == 401:
        challenge = _challenge(headers.get("WWW-Authenticate", ""))
        tenant = _tenant(challenge.get("authorization_uri", ""))
        why = challenge.get("error_description") or challenge.get("error") or code or "refused"
        fix = (
            f"sign in to tenant {tenant} (az login --tenant {tenant}, or AZURE_TENANT_ID={tenant})"
            if tenant
            else "sign in again to the tenant that holds it"
        )
        return f"{doing}: ARM refused the token (401: {_short(why)}); {fix}"
    if status == 403:
        return (
            f"{doing}: no access to {sub} (403 {code or 'Forbidden'}); ask an owner for a role "
            "on it: Security Admin to connect, Reader (or Security Reader) to read"
        )
    if status == 429:
        wait = headers.get("Retry-After") or headers.get("x-ms-user-quota-resets-after")
        after = f" after {wait}" if wait else " in a few minutes"
        throttled = f"ARM is throttling these requests (429, retried {RETRIES} times)"
        return f"{doing}: {throttled}; run again{after}"
    if status == 404:
        return f"{doing}: not found in {sub} (404 {code or 'NotFound'}); check the names given"
    return f"{doing}: ARM answered HTTP {status} {code or ''}".rstrip() + f": {_message(err)}"


def _error_code(err: Any) -> str | None:
    error = getattr(err, "error", None)
    return getattr(error, "code", None) if error is not None else None


def _message(err: Any) -> str:
    error = getattr(err, "error", None)
    return _short(getattr(error, "message", None) or err.reason or "no detail")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _challenge(header: str) -> dict[str, str]:
    """`Bearer authorization_uri="…", error="invalid_token"` → its parameters."""
    return dict(_PARAM.findall(header))


def _tenant(authorization_uri: str) -> str | None:
    path = urlsplit(authorization_uri).path.strip("/")
    return path.split("/")[0] or None if path else None

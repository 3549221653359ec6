"""The issuers' signing keys: found by OpenID discovery, cached, refreshed sparingly.

Azure DevOps publishes one key set for all organizations (`https://vstoken.dev.azure.com/
.well-known/jwks`), so key sets are cached by their URL and shared. A token naming a key id the
cache does not know makes one refresh, at most once per `jwks_refresh_interval`: keys rotate
rarely, and a stream of forged key ids must not become a stream of fetches. Known keys are
fetched again after `jwks_max_age`; if that fetch fails the known keys keep serving.

PyJWT fetches (`PyJWKClient.fetch_data`, no redirects) and parses (`PyJWKSet`); this module only
decides when.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from container_mapping import USER_AGENT
from container_mapping.errors import ApiError
from container_mapping.service.config import TrustSettings, is_loopback

log = logging.getLogger(__name__)
FAILURE_BACKOFF = 2.0  # seconds before a failed fetch is tried again by another request


class KeysUnavailable(ApiError):
    """The issuer's discovery document or key set could not be fetched (the caller may retry)."""


class UnknownKey(ApiError):
    """The token names a key id its issuer does not publish."""


class NotCached(Exception):
    """The key is not known without a fetch (asked with `fetch=False`)."""


@dataclass
class _Discovered:
    jwks_uri: str
    at: float


class KeySet:
    """One JWKS URL's keys by `kid`, with the refresh rules of the module docstring."""

    def __init__(self, uri: str, trust: TrustSettings) -> None:
        self.uri = uri
        self.trust = trust
        self._client = PyJWKClient(
            uri, cache_jwk_set=False, timeout=trust.http_timeout, headers={"User-Agent": USER_AGENT}
        )
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._failed = False
        self._lock = threading.Lock()

    def key(self, kid: str, fetch: bool = True) -> PyJWK:
        now = time.monotonic()
        keys = self._keys
        if keys is not None and kid in keys and now - self._fetched_at < self.trust.jwks_max_age:
            return keys[kid]
        if not fetch:
            raise NotCached(kid)
        with self._lock:
            return self._key_locked(kid, time.monotonic())

    def _key_locked(self, kid: str, now: float) -> PyJWK:
        if self._keys is None or now - self._fetched_at >= self.trust.jwks_max_age:
            self._refresh(now, keep_stale=self._keys is not None)
        keys = self._keys or {}
        if kid not in keys and now - self._attempted_at >= self.trust.jwks_refresh_interval:
            self._refresh(now, keep_stale=False)
        found = (self._keys or {}).get(kid)
        if found is None:
            raise UnknownKey(f"the token's key id {kid[:64]!r} is not in the issuer's key set")
        return found

    def _refresh(self, now: float, keep_stale: bool) -> None:
        if self._failed and now - self._attempted_at < FAILURE_BACKOFF:
            if keep_stale:
                return
            raise KeysUnavailable(f"the key set at {self.uri} could not be fetched just now")
        self._attempted_at = now
        try:
            data = self._client.fetch_data()
            parsed = PyJWKSet.from_dict(data)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, jwt.InvalidKeyError) as err:
            self._failed = True
            if keep_stale:
                log.warning("key set %s not refreshed, keeping the known keys: %s", self.uri, err)
                return
            raise KeysUnavailable(f"the key set at {self.uri} could not be fetched: {err}") from err
        self._failed = False
        self._keys = {k.key_id: k for k in parsed.keys if k.key_id}
        self._fetched_at = now


class KeyRing:
    """Discovery documents by issuer and key sets by JWKS URL, for the life of the process."""

    def __init__(self, trust: TrustSettings) -> None:
        self.trust = trust
        self._discovered: dict[str, _Discovered] = {}
        self._failed: dict[str, float] = {}  # issuer -> when its discovery last failed
        self._sets: dict[str, KeySet] = {}
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str, fetch: bool = True) -> PyJWK:
        """The key `kid` of `issuer`; with `fetch=False`, `NotCached` rather than any I/O."""
        if not fetch:
            known = self._discovered.get(issuer)
            found = self._sets.get(known.jwks_uri) if known else None
            stale = known is None or time.monotonic() - known.at >= self.trust.jwks_max_age
            if stale or found is None:
                raise NotCached(issuer)
            return found.key(kid, fetch=False)
        return self._key_set(self._jwks_uri(issuer)).key(kid)

    def _key_set(self, uri: str) -> KeySet:
        with self._lock:
            found = self._sets.get(uri)
            if found is None:
                found = self._sets[uri] = KeySet(uri, self.trust)
            return found

    def _jwks_uri(self, issuer: str) -> str:
        now = time.monotonic()
        known = self._discovered.get(issuer)
        if known is not None and now - known.at < self.trust.jwks_max_age:
            return known.jwks_uri
        if now - self._failed.get(issuer, float("-inf")) < FAILURE_BACKOFF:
            if known is not None:
                return known.jwks_uri
            raise KeysUnavailable(f"the discovery document of {issuer} could not be fetched")
        try:
            uri = discover(issuer, self.trust.http_timeout)
        except KeysUnavailable:
            self._failed[issuer] = now
            if known is not None:  # keep the last good answer while discovery is down
                return known.jwks_uri
            raise
        self._discovered[issuer] = _Discovered(uri, now)
        return uri


def discover(issuer: str, timeout: float) -> str:
    """`jwks_uri` from `{issuer}/.well-known/openid-configuration`, checked before use."""
    url = f"{issuer}/.well-known/openid-configuration"
    document = _get_json(url, timeout)
    if not isinstance(document, dict) or document.get("issuer", issuer).rstrip("/") != issuer:
        raise KeysUnavailable(f"the discovery document at {url} is not for issuer {issuer}")
    uri = document.get("jwks_uri")
    if not isinstance(uri, str) or not _acceptable_url(uri):
        raise KeysUnavailable(f"the discovery document at {url} has no https jwks_uri")
    return uri


def _acceptable_url(uri: str) -> bool:
    parts = urllib.parse.urlsplit(uri)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _get_json(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read(1024 * 1024))
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise KeysUnavailable(f"{url} could not be fetched: {reason}") from err

"""One small HTTP client for every remote service: registry, Azure DevOps, Defender, our service.

Built on `http.client`, not `requests`: the post-job step must start in well under 100 ms of
Python, and `requests` + `urllib3` alone cost about 200 ms to import here. What we need of them
is small and lives here once: a deadline on every call, a `User-Agent`, retries with backoff
that honour `Retry-After`, redirects returned rather than followed (a 302 to a sign-in page is
an answer the caller must see), and the agent's proxy settings.

Nothing here ever puts a header value or a URL's credentials or query into a message.
"""

from __future__ import annotations

import email.utils
import http.client
import json as jsonlib
import os
import socket
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from container_mapping import USER_AGENT
from container_mapping.errors import ApiError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TransportError(ApiError):
    """No HTTP answer at all: refused, reset, timed out, TLS failure, bad URL."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # keys in lower case
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError as err:
            raise ApiError(
                f"{redact(self.url)} answered HTTP {self.status} with a body that is not JSON",
                self.status,
            ) from err

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff 0.5, 1, 2, 4 s (capped), never past the caller's deadline."""

    attempts: int = 4
    backoff: float = 0.5
    max_sleep: float = 8.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def delay(self, attempt: int, response: Response | None) -> float:
        wait: float = min(self.max_sleep, self.backoff * 2.0**attempt)
        if response is not None:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                wait = min(max(after, 0.0), self.max_sleep * 4)
        return wait


NO_RETRY = RetryPolicy(attempts=1)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return float(when.timestamp() - time.time())


def redact(url: str) -> str:
    """A URL fit for a message: no user-info, no query, no fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class HttpClient:
    """Requests with a deadline and retries; one instance per remote service."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        user_agent: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self.user_agent = user_agent or USER_AGENT
        self._environ = os.environ if environ is None else environ

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> Response:
        """Send, retrying per policy; return the last answer, or raise `TransportError`."""
        policy = retry or self.retry
        all_headers = {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        last_error: TransportError | None = None
        for attempt in range(policy.attempts):
            response: Response | None = None
            try:
                response = self._send_once(method, url, all_headers, body, deadline)
                if response.status not in policy.statuses:
                    return response
            except TransportError as err:
                last_error = err
            if attempt + 1 >= policy.attempts:
                break
            wait = policy.delay(attempt, response)
            if deadline is not None and time.monotonic() + wait >= deadline:
                break
            time.sleep(wait)
        if response is not None:
            return response
        raise last_error or TransportError(f"{redact(url)}: no attempt was made")

    def _send_once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        deadline: float | None,
    ) -> Response:
        timeout = self.timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise TransportError(f"{redact(url)}: the time budget ran out before sending")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"{redact(url)} is not an http:// or https:// URL")
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        if parts.scheme == "http" and self._proxy_for(parts) is not None:
            target = url  # a plain-HTTP proxy takes the absolute URL
        conn = self._connection(parts, timeout)
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            raw = conn.getresponse()
            data = read_body(raw, deadline)
        except (socket.timeout, TimeoutError) as err:
            raise TransportError(f"{redact(url)}: no answer within {timeout:.1f}s") from err
        except (OSError, http.client.HTTPException) as err:
            reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
            raise TransportError(f"{redact(url)}: {reason}") from err
        finally:
            conn.close()
        found = {k.lower(): v for k, v in raw.getheaders()}
        return Response(raw.status, found, data, url)

    def _connection(
        self, parts: urllib.parse.SplitResult, timeout: float
    ) -> http.client.HTTPConnection:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        proxy = self._proxy_for(parts)
        host = parts.hostname or ""
        if proxy is None:
            if parts.scheme == "https":
                return http.client.HTTPSConnection(host, port, timeout=timeout)
            return http.client.HTTPConnection(host, port, timeout=timeout)
        proxy_parts = urllib.parse.urlsplit(proxy)
        proxy_host, proxy_port = proxy_parts.hostname or "", proxy_parts.port or 8080
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout)
            conn.set_tunnel(host, port)
            return conn
        return http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)

    def _proxy_for(self, parts: urllib.parse.SplitResult) -> str | None:
        env = self._environ
        proxy = env.get(f"{parts.scheme}_proxy") or env.get(f"{parts.scheme.upper()}_PROXY")
        if not proxy:
            return None
        host = (parts.hostname or "").lower()
        no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
        for entry in (e.strip().lower() for e in no_proxy.split(",")):
            if entry == "*" or (
                entry and (host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")))
            ):
                return None
        if host in ("localhost", "127.0.0.1", "::1"):
            return None
        return proxy


def read_body(response: http.client.HTTPResponse, deadline: float | None) -> bytes:
    """Read a whole body, giving up at the deadline even if bytes keep trickling in."""
    chunks: list[bytes] = []
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("deadline passed while reading the answer")
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)

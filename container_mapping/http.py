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
import io
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
from container_mapping.proxy import Proxy, ProxySettings
from container_mapping.tls import TlsSettings, client_context

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: What one answer's body may hold unless the caller says otherwise: the largest answer we read
#: (a manifest index, a token, an error page) with a wide margin. Past it the body is cut.
MAX_BODY = 1024 * 1024


class TransportError(ApiError):
    """No HTTP answer at all: refused, reset, timed out, TLS failure, bad URL."""


class RequestError(TransportError):
    """The request itself cannot be sent (a bad URL or header): asking again will not help."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # keys in lower case
    body: bytes
    url: str
    truncated: bool = False  # the body was cut at the size limit

    def json(self) -> Any:
        if self.truncated:
            raise ApiError(
                f"{redact(self.url)} answered HTTP {self.status} with a body larger than "
                f"{len(self.body)} bytes, which is more than any real answer",
                self.status,
            )
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
    """A URL fit for a message: no user-info, query or fragment (`<invalid URL>` if unparsable)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


def without_userinfo(url: str) -> str:
    """The URL as it may travel in a request line: its user-info removed, the rest kept."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


class HttpClient:
    """Requests with a deadline and retries; one instance per remote service.

    Connections are kept alive and reused per (scheme, host, port) until an error, a cut body
    or `close()`; an instance is therefore used by one thread at a time.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        user_agent: str | None = None,
        environ: Mapping[str, str] | None = None,
        proxies: ProxySettings | None = None,
        tls: TlsSettings | None = None,
    ) -> None:
        """`proxies` and `tls` default to what `environ` (default `os.environ`) says."""
        self.timeout = timeout
        self.retry = retry
        self.user_agent = user_agent or USER_AGENT
        self._environ = os.environ if environ is None else environ
        self._proxies, self._tls = proxies, tls
        # Keep-alive: one open connection per (scheme, host, port), dropped on any error.
        self._pool: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def close(self) -> None:
        """Close the connections kept open for the next request."""
        pool, self._pool = getattr(self, "_pool", {}), {}
        for conn in pool.values():
            conn.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    __del__ = close  # a client dropped without close() leaves no socket behind

    def connect(self, url: str, deadline: float | None = None) -> None:
        """Open, and keep for the next request to `url`'s host, its connection (TCP, the proxy's
        tunnel, TLS) now: its round trips then overlap another wait, such as the job's token.
        Best effort: a failure here is met again, and reported, by the request itself."""
        try:
            parts = urllib.parse.urlsplit(url)
            key = (parts.scheme, (parts.hostname or "").lower(), _port(parts))
        except ValueError:
            return
        timeout = self.timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
        if parts.scheme not in ("http", "https") or not parts.hostname or timeout <= 0:
            return
        try:
            conn = self._connection(parts, timeout)
            if conn.sock is None:
                conn.connect()
        except (OSError, ValueError, http.client.HTTPException):
            self._drop(key)

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
        max_body: int = MAX_BODY,
    ) -> Response:
        """Send, retrying per policy; return the last answer, or raise `TransportError`.

        The answer's body is read up to `max_body` bytes (`Response.truncated` says it was cut).
        """
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
                response = self._send_once(method, url, all_headers, body, deadline, max_body)
                if response.status not in policy.statuses:
                    return response
            except RequestError:
                raise
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
        max_body: int,
    ) -> Response:
        timeout = self.timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise TransportError(f"{redact(url)}: the time budget ran out before sending")
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise RequestError(f"{redact(url)} is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestError(f"{redact(url)} is not an http:// or https:// URL")
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        headers = dict(headers)
        proxy = self._proxy_for(parts)
        if parts.scheme == "http" and proxy is not None:
            target = without_userinfo(url)  # a plain-HTTP proxy takes the absolute URL
            headers.update(proxy.headers)
        key = (parts.scheme, (parts.hostname or "").lower(), _port(parts))
        reused = key in self._pool
        conn = self._connection(parts, timeout)
        conn.response_class = _bounded_response(deadline or time.monotonic() + timeout)
        try:
            raw = self._exchange(conn, method, target, body, headers, reused, parts, timeout)
            data, truncated = read_body(raw, deadline, max_body)
        except (socket.timeout, TimeoutError) as err:
            self._drop(key)
            raise TransportError(f"{redact(url)}: no answer within {timeout:.1f}s") from err
        except (OSError, http.client.HTTPException, ValueError) as err:
            self._drop(key)
            error = RequestError if isinstance(err, ValueError) else TransportError
            raise error(f"{redact(url)}: {_reason(err)}") from err
        except BaseException:
            self._drop(key)
            raise
        raw.close()  # read to its end: the connection is free for the next request
        if truncated or raw.will_close:
            self._drop(key)
        found = {k.lower(): v for k, v in raw.getheaders()}
        return Response(raw.status, found, data, url, truncated)

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        reused: bool,
        parts: urllib.parse.SplitResult,
        timeout: float,
    ) -> http.client.HTTPResponse:
        """Send and read the status; once more on a fresh connection if a kept one went stale.

        A server may close an idle kept-alive connection just as we reuse it: that shows as a
        reset or a close before any byte of the answer, and the request never reached it.
        """
        try:
            conn.request(method, target, body=body, headers=headers)
            return conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
        key = (parts.scheme, (parts.hostname or "").lower(), _port(parts))
        self._drop(key)
        fresh = self._connection(parts, timeout)
        fresh.response_class = conn.response_class
        fresh.request(method, target, body=body, headers=headers)
        return fresh.getresponse()

    def _drop(self, key: tuple[str, str, int]) -> None:
        conn = self._pool.pop(key, None)
        if conn is not None:
            conn.close()

    def _connection(
        self, parts: urllib.parse.SplitResult, timeout: float
    ) -> http.client.HTTPConnection:
        """The kept connection for this scheme, host and port, else a new one (then kept)."""
        host, port = (parts.hostname or "").lower(), _port(parts)
        key = (parts.scheme, host, port)
        conn = self._pool.get(key)
        if conn is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn
        proxy = self._proxy_for(parts)
        if parts.scheme == "https":
            context = client_context(self._tls_settings())
            if proxy is None:
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
            else:
                conn = http.client.HTTPSConnection(
                    proxy.host, proxy.port, timeout=timeout, context=context
                )
                # Credentials go in the CONNECT only; the tunnelled request never sees them.
                conn.set_tunnel(host, port, headers=proxy.headers)
        elif proxy is None:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
        self._pool[key] = conn
        return conn

    def _proxy_for(self, parts: urllib.parse.SplitResult) -> Proxy | None:
        if self._proxies is None:
            self._proxies = ProxySettings.from_environment(self._environ)
        return self._proxies.for_url(
            urllib.parse.urlunsplit(
                (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
            )
        )

    def _tls_settings(self) -> TlsSettings:
        if self._tls is None:
            self._tls = TlsSettings.from_environment(self._environ)
        return self._tls


def _port(parts: urllib.parse.SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _reason(err: BaseException) -> str:
    """Why a request failed, in words that never repeat a URL, a header or a value sent.

    `http.client` puts the whole URL (`InvalidURL`) or the offending header value (a token
    with a line break) into its messages, so those are named by kind only.
    """
    if isinstance(err, http.client.InvalidURL):
        return "not a valid URL"
    tunnel = str(err).split(":", 1) if type(err) is OSError else []
    if tunnel and tunnel[0] == "Tunnel connection failed":  # http.client's CONNECT refused
        status = tunnel[1].split()[0] if tunnel[1].split() else "?"
        hint = ": check the agent's proxy user name and password" if status == "407" else ""
        return f"the proxy refused the tunnel (HTTP {status}){hint}"
    verify = getattr(err, "verify_message", None)  # ssl.SSLCertVerificationError, a ValueError
    if verify is not None:
        return (
            f"the server's TLS certificate is not trusted ({verify}); a private CA is trusted "
            "through the agent's --sslcacert (Agent.CAInfo) or the host's SSL_CERT_FILE"
        )
    if isinstance(err, ValueError):
        return "a request header has a character HTTP does not allow"
    if isinstance(err, http.client.HTTPException):
        return f"not an HTTP answer ({type(err).__name__})"
    return getattr(err, "strerror", None) or type(err).__name__


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, each read bounded by one deadline: status line and headers included.

    `http.client` reads the status line and headers through `sock.makefile()`, where the socket
    timeout bounds each read but not their sum: a server trickling a byte a second keeps it
    waiting forever. Reading through this raw stream makes the deadline hold for every byte.

    It keeps the socket's own file object (`keep`) open until it is closed itself: that file
    object is what defers the socket's real close when `http.client` closes the connection
    under an answer it has not read yet (`Connection: close`, HTTP/1.0).
    """

    def __init__(self, sock: socket.socket, deadline: float, keep: io.IOBase) -> None:
        super().__init__()
        self._sock, self._deadline, self._keep = sock, deadline, keep

    def close(self) -> None:
        super().close()
        self._keep.close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed while reading the answer")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


def _bounded_response(deadline: float) -> type[http.client.HTTPResponse]:
    class BoundedResponse(http.client.HTTPResponse):
        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline, self.fp))

    return BoundedResponse


def read_body(
    response: http.client.HTTPResponse, deadline: float | None, limit: int = MAX_BODY
) -> tuple[bytes, bool]:
    """Read a body up to `limit` bytes, giving up at the deadline even if bytes keep trickling.

    Returns the bytes and whether the body was cut at the limit.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("deadline passed while reading the answer")
        chunk = response.read1(min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True

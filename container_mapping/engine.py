"""A small Docker Engine API client on the standard library.

Why not the docker SDK: importing it costs about 300 ms here (almost all of it `requests`
and `urllib3`), and the post-job step runs in every job of every pipeline. The collector needs
three read-only calls (`/version`, `/events`, `/images/{name}/json`), so this speaks HTTP/1.1
on the engine's socket itself (one `GET` per connection; chunked, sized or to-the-end bodies),
without `http.client`, which imports `email` and `ssl` (about 30 ms); `ssl` is imported only
for a TLS engine. The address is found the way the
docker CLI finds it: `DOCKER_HOST`, else `DOCKER_CONTEXT` or the config's `currentContext`,
else the platform's default socket. TLS follows `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`.

Every call has a deadline, so an engine that accepts and never answers costs at most the
caller's budget.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from container_mapping import USER_AGENT
from container_mapping.collect.sources import DOCKER_DEFAULT_SOCKET
from container_mapping.debug import debug
from container_mapping.errors import ConfigError, EngineError, EngineUnavailable

if TYPE_CHECKING:
    import ssl

DEFAULT_UNIX_SOCKET = f"unix://{DOCKER_DEFAULT_SOCKET}"
DEFAULT_WINDOWS_PIPE = "npipe:////./pipe/docker_engine"
#: The most one answer may hold. The event buffer is 256 events of a few KiB each (labels
#: included); an image's inspect is tens of KiB. Past these an engine is not answering honestly.
MAX_EVENTS_BODY = 16 * 1024 * 1024
MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class EngineAddress:
    """Where the engine listens, and the TLS material to reach it with (tcp only)."""

    url: str
    tls_verify: bool = False
    cert_path: str | None = None
    origin: str = "default"  # which setting named it: DOCKER_HOST, a context, or the default
    note: str | None = None  # a problem met finding it (an unreadable Docker config), to report


def resolve_address(environ: Mapping[str, str]) -> EngineAddress:
    """Find the engine the docker CLI would talk to in this environment."""
    host = environ.get("DOCKER_HOST", "").strip()
    tls_verify = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = environ.get("DOCKER_CERT_PATH") or None
    if host:
        return EngineAddress(host, tls_verify, cert_path, origin="DOCKER_HOST")
    config_dir = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name: str | None = environ.get("DOCKER_CONTEXT", "").strip()
    note = None
    if not name:
        name, note = _current_context(config_dir)
    if name and name != "default":
        return _context_address(config_dir, name)
    default = DEFAULT_WINDOWS_PIPE if sys.platform == "win32" else DEFAULT_UNIX_SOCKET
    return EngineAddress(default, tls_verify, cert_path, note=note)


def _current_context(config_dir: Path) -> tuple[str | None, str | None]:
    """The config's `currentContext`, and what was wrong with the config if it is unreadable.

    An unreadable config is not a fault (the default engine is used), but it is said: the
    collector reports the note with its warnings.
    """
    path = config_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"ignoring the Docker config {path}: {_why(err)}; fix or remove it"
    if not isinstance(config, dict):
        return None, f"ignoring the Docker config {path}: it is not a JSON object; fix or remove it"
    value = config.get("currentContext")
    return (value if isinstance(value, str) else None), None


def _why(err: Exception) -> str:
    if isinstance(err, ValueError):
        return f"it is not valid JSON ({err})"
    return str(getattr(err, "strerror", None) or type(err).__name__)


def _context_address(config_dir: Path, name: str) -> EngineAddress:
    import hashlib  # only for a named context: not on post-job's usual path

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_file = config_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"docker context {name!r} not found or unreadable at {meta_file}; "
            "run `docker context ls`, or set DOCKER_HOST"
        ) from err
    tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
    return EngineAddress(
        host,
        tls_verify=tls_dir.is_dir() and not endpoint.get("SkipTLSVerify", False),
        cert_path=str(tls_dir) if tls_dir.is_dir() else None,
        origin=f"context {name}",
    )


class Engine:
    """Read-only calls to one Docker engine, each bounded by a deadline."""

    def __init__(self, address: EngineAddress, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout
        self._deadline: float | None = None
        debug(__name__, "Docker engine at %s (from %s)", address.url, address.origin)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], timeout: float = 10.0) -> Engine:
        return cls(resolve_address(environ), timeout)

    def set_deadline(self, deadline: float | None) -> None:
        """Bound every later call by `deadline` (a `time.monotonic()` value)."""
        self._deadline = deadline

    # -- the calls the collector needs ------------------------------------------------------

    def version(self) -> dict[str, Any]:
        data = self._json("/version")
        if not isinstance(data, dict):
            raise EngineError("the engine's /version answer is not a JSON object")
        return data

    def events(
        self, since: float, until: float, filters: Mapping[str, list[str]]
    ) -> Iterator[dict[str, Any]]:
        """Events in [since, until] (Unix seconds); the engine ends the stream at `until`."""
        query = {
            "since": f"{since:.9f}",
            "until": f"{until:.9f}",
            "filters": json.dumps(dict(filters), separators=(",", ":")),
        }
        body, truncated = self._request("/events", query, MAX_EVENTS_BODY)
        yield from _json_stream(body, truncated)

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        """`GET /images/{name}/json`, or `None` when the engine has no such image."""
        try:
            data = self._json(f"/images/{urllib.parse.quote(name, safe='/:@')}/json")
        except EngineError as err:
            if err.status_code == 404:
                return None
            raise
        if not isinstance(data, dict):
            raise EngineError(f"the engine's answer for image {name} is not a JSON object")
        return data

    # -- transport ---------------------------------------------------------------------------

    def _json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        body, truncated = self._request(path, query, MAX_BODY)
        if truncated:
            raise EngineError(f"the engine's answer to {path} is larger than {MAX_BODY} bytes")
        try:
            return json.loads(body)
        except ValueError as err:
            raise EngineError(
                f"the engine answered {path} with something that is not JSON"
            ) from err

    def _request(
        self, path: str, query: Mapping[str, str] | None, limit: int
    ) -> tuple[bytes, bool]:
        """The body (at most `limit` bytes) and whether it was cut there."""
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        timeout = self._time_left()
        started = time.monotonic()
        try:
            with self._connect(timeout) as sock:
                sock.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: {USER_AGENT}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                status, body, truncated = _read_response(sock, self._deadline, limit)
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise EngineUnavailable(self._unavailable(str(err.strerror or err))) from err
        except (socket.timeout, TimeoutError) as err:
            raise EngineUnavailable(self._unavailable(f"no answer within {timeout:.1f}s")) from err
        except OSError as err:
            raise EngineUnavailable(self._unavailable(str(err) or type(err).__name__)) from err
        debug(
            __name__, "engine GET %s: HTTP %d, %d bytes in %.1f ms",
            path, status, len(body), (time.monotonic() - started) * 1000,
        )  # fmt: skip
        if status >= 400:
            raise EngineError(
                f"the engine answered {path} with HTTP {status}: {_message(body)}",
                status_code=status,
            )
        return body, truncated

    def _connect(self, timeout: float) -> socket.socket:
        scheme, _, rest = self.address.url.partition("://")
        if scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            path = rest if rest.startswith("/") else "/" + rest
            try:
                sock.connect(path)
            except OSError as err:
                sock.close()
                _not_a_socket(path, self._unavailable)
                if isinstance(err, PermissionError):
                    raise EngineUnavailable(_not_permitted(path, self.address)) from err
                raise
            return sock
        if scheme in ("tcp", "http", "https"):
            tls = self.address.tls_verify or scheme == "https" or bool(self.address.cert_path)
            host, port = _host_and_port(self.address, rest, 2376 if tls else 2375)
            sock = socket.create_connection((host, port), timeout)
            if tls:
                return self._tls_context().wrap_socket(sock, server_hostname=host)
            return sock
        raise EngineUnavailable(
            f"engine address {self.address.url} ({self.address.origin}) uses {scheme}://, "
            "which this tool does not speak; expose the engine on unix:// or tcp://"
        )

    def _tls_context(self) -> ssl.SSLContext:
        import ssl

        cert_dir = Path(self.address.cert_path or Path.home() / ".docker")
        ca = cert_dir / "ca.pem"
        context = ssl.create_default_context(cafile=str(ca) if ca.exists() else None)
        if not self.address.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if (cert_dir / "cert.pem").exists():
            context.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
        return context

    def _time_left(self) -> float:
        if self._deadline is None:
            return self.timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise EngineUnavailable(self._unavailable("the time budget ran out"))
        return min(self.timeout, left)

    def _unavailable(self, why: str) -> str:
        return (
            f"no Docker engine reachable at {self.address.url} ({self.address.origin}): {why}. "
            "Start the engine, or point DOCKER_HOST at it"
            + (f" (also {self.address.note})" if self.address.note else "")
        )


def _host_and_port(address: EngineAddress, rest: str, default_port: int) -> tuple[str, int]:
    """`host[:port]` of a tcp:// address; a malformed one is a configuration error (exit 2)."""
    try:
        parsed = urllib.parse.urlsplit("//" + rest)
        return parsed.hostname or "localhost", parsed.port or default_port
    except ValueError:  # a port that is not a number or out of range, an unclosed `[`
        raise ConfigError(
            f"engine address {address.url} ({address.origin}) is not tcp://HOST[:PORT] with a "
            f"port from 1 to 65535: fix {address.origin}"
        ) from None


def _not_permitted(path: str, address: EngineAddress) -> str:
    return (
        f"the Docker engine's socket {path} ({address.origin}) refuses this user: run as a "
        "member of the socket's group (usually docker), or point DOCKER_HOST at an engine "
        "this user may use"
    )


def _not_a_socket(path: str, unavailable: Callable[[str], str]) -> None:
    """Raise a clear error when the socket path names something else: a file, a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISSOCK(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a file"
        raise EngineUnavailable(unavailable(f"{path} is {kind}, not a socket"))


class _Reader:
    """Reads an HTTP/1.1 answer off a socket, never past the deadline."""

    def __init__(self, sock: socket.socket, deadline: float | None, limit: int) -> None:
        self._sock, self._deadline = sock, deadline
        self._buffer = bytearray()
        self._left = limit  # bytes still allowed, headers and chunk framing included
        self.truncated = False

    def _fill(self) -> bool:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TimeoutError("deadline passed while reading the engine's answer")
        if self._left <= 0:
            self.truncated = True
            return False
        chunk = self._sock.recv(min(65536, self._left))
        self._left -= len(chunk)
        self._buffer += chunk
        return bool(chunk)

    def _ended(self) -> bytes:
        """What is left when the answer ends early: the cut part, or an error if not cut."""
        if not self.truncated:
            raise EngineError("the engine closed the connection in the middle of an answer")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if not self._fill():
                return self._ended()
        data = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return data

    def exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                return self._ended()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        return bytes(self._buffer)


def _read_response(
    sock: socket.socket, deadline: float | None, limit: int
) -> tuple[int, bytes, bool]:
    """Status, body and whether it was cut at `limit`: chunked, sized, or up to the end."""
    reader = _Reader(sock, deadline, limit)
    status_line = reader.line().split(b" ", 2)
    if (
        len(status_line) < 2
        or not status_line[0].startswith(b"HTTP/")
        or not status_line[1].isdigit()
    ):
        raise EngineError("the engine's answer is not HTTP")
    headers = {}
    while (header := reader.line()) and not reader.truncated:
        name, _, value = header.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    status = int(status_line[1])
    if reader.truncated:
        return status, b"", True
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        body = _read_chunks(reader)
    elif headers.get(b"content-length", b"").isdigit():
        body = reader.exactly(int(headers[b"content-length"]))
    else:
        body = reader.rest()
    return status, body, reader.truncated


def _read_chunks(reader: _Reader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as err:
            raise EngineError("the engine sent a malformed chunked answer") from err
        if size == 0:
            return b"".join(chunks)
        chunks.append(reader.exactly(size))
        if reader.truncated:
            return b"".join(chunks)
        reader.line()


def _json_stream(body: bytes, truncated: bool = False) -> Iterator[dict[str, Any]]:
    """Objects of a concatenated-JSON stream; a malformed object ends it with an error.

    A stream cut at the size limit yields every whole object before the cut, then the error.
    """
    decoder = json.JSONDecoder()
    text = body.decode("utf-8", errors="replace")
    index, end = 0, len(text)
    while True:
        while index < end and text[index].isspace():
            index += 1
        if index >= end:
            break
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError as err:
            if truncated:
                break
            raise EngineError(f"malformed event data from the engine at byte {index}") from err
        if isinstance(value, dict):
            yield value
    if truncated:
        raise EngineError(f"the engine's event answer is larger than {MAX_EVENTS_BODY} bytes")


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
    except ValueError:
        pass
    return body[:200].decode("utf-8", errors="replace").strip() or "(empty body)"

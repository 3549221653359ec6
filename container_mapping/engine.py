"""A small Docker Engine API client on the standard library.

Why not the docker SDK: importing it costs about 300 ms here (almost all of it `requests`
and `urllib3`), and the post-job step runs in every job of every pipeline. The collector needs
four read-only calls (`/_ping`, `/version`, `/events`, `/images/{name}/json`); `http.client`
over the engine's socket serves them in a few milliseconds. The address is found the way the
docker CLI finds it: `DOCKER_HOST`, else `DOCKER_CONTEXT` or the config's `currentContext`,
else the platform's default socket. TLS follows `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`.

Every call has a deadline, so an engine that accepts and never answers costs at most the
caller's budget.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from container_mapping import USER_AGENT
from container_mapping.errors import ConfigError, EngineError, EngineUnavailable

if TYPE_CHECKING:
    import ssl

DEFAULT_UNIX_SOCKET = "unix:///var/run/docker.sock"
DEFAULT_WINDOWS_PIPE = "npipe:////./pipe/docker_engine"


@dataclass(frozen=True)
class EngineAddress:
    """Where the engine listens, and the TLS material to reach it with (tcp only)."""

    url: str
    tls_verify: bool = False
    cert_path: str | None = None
    origin: str = "default"  # which setting named it: DOCKER_HOST, a context, or the default

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]


def resolve_address(environ: Mapping[str, str]) -> EngineAddress:
    """Find the engine the docker CLI would talk to in this environment."""
    host = environ.get("DOCKER_HOST", "").strip()
    tls_verify = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = environ.get("DOCKER_CERT_PATH") or None
    if host:
        return EngineAddress(host, tls_verify, cert_path, origin="DOCKER_HOST")
    config_dir = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name = environ.get("DOCKER_CONTEXT", "").strip() or _current_context(config_dir)
    if name and name != "default":
        return _context_address(config_dir, name)
    default = DEFAULT_WINDOWS_PIPE if sys.platform == "win32" else DEFAULT_UNIX_SOCKET
    return EngineAddress(default, tls_verify, cert_path)


def _current_context(config_dir: Path) -> str | None:
    try:
        config = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("currentContext") if isinstance(config, dict) else None
    return value if isinstance(value, str) else None


def _context_address(config_dir: Path, name: str) -> EngineAddress:
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

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], timeout: float = 10.0) -> Engine:
        return cls(resolve_address(environ), timeout)

    def set_deadline(self, deadline: float | None) -> None:
        """Bound every later call by `deadline` (a `time.monotonic()` value)."""
        self._deadline = deadline

    # -- the calls the collector needs ------------------------------------------------------

    def ping(self) -> None:
        self._request("/_ping")

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
        body = self._request("/events", query)
        yield from _json_stream(body)

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
        body = self._request(path, query)
        try:
            return json.loads(body)
        except ValueError as err:
            raise EngineError(
                f"the engine answered {path} with something that is not JSON"
            ) from err

    def _request(self, path: str, query: Mapping[str, str] | None = None) -> bytes:
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        timeout = self._time_left()
        try:
            with self._connect(timeout) as sock:
                sock.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: {USER_AGENT}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                status, body = _read_response(sock, self._deadline)
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise EngineUnavailable(self._unavailable(str(err.strerror or err))) from err
        except (socket.timeout, TimeoutError) as err:
            raise EngineUnavailable(self._unavailable(f"no answer within {timeout:.1f}s")) from err
        except OSError as err:
            raise EngineUnavailable(self._unavailable(str(err) or type(err).__name__)) from err
        if status >= 400:
            raise EngineError(
                f"the engine answered {path} with HTTP {status}: {_message(body)}",
                status_code=status,
            )
        return body

    def _connect(self, timeout: float) -> socket.socket:
        scheme, _, rest = self.address.url.partition("://")
        if scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(rest if rest.startswith("/") else "/" + rest)
            except OSError:
                sock.close()
                raise
            return sock
        if scheme in ("tcp", "http", "https"):
            parsed = urllib.parse.urlsplit("//" + rest)
            host = parsed.hostname or "localhost"
            tls = self.address.tls_verify or scheme == "https" or bool(self.address.cert_path)
            sock = socket.create_connection((host, parsed.port or (2376 if tls else 2375)), timeout)
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
        )


class _Reader:
    """Reads an HTTP/1.1 answer off a socket, never past the deadline."""

    def __init__(self, sock: socket.socket, deadline: float | None) -> None:
        self._sock, self._deadline = sock, deadline
        self._buffer = bytearray()

    def _fill(self) -> bool:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TimeoutError("deadline passed while reading the engine's answer")
        chunk = self._sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if not self._fill():
                raise EngineError("the engine closed the connection in the middle of an answer")
        data = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return data

    def exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise EngineError("the engine closed the connection in the middle of an answer")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        return bytes(self._buffer)


def _read_response(sock: socket.socket, deadline: float | None) -> tuple[int, bytes]:
    """Status and body of one answer: chunked, with a length, or up to the connection's end."""
    reader = _Reader(sock, deadline)
    status_line = reader.line().split(b" ", 2)
    if (
        len(status_line) < 2
        or not status_line[0].startswith(b"HTTP/")
        or not status_line[1].isdigit()
    ):
        raise EngineError("the engine's answer is not HTTP")
    headers = {}
    while header := reader.line():
        name, _, value = header.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        return int(status_line[1]), _read_chunks(reader)
    if headers.get(b"content-length", b"").isdigit():
        return int(status_line[1]), reader.exactly(int(headers[b"content-length"]))
    return int(status_line[1]), reader.rest()


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
        reader.line()


def _json_stream(body: bytes) -> Iterator[dict[str, Any]]:
    """Objects of a concatenated-JSON stream; a malformed object ends it with an error."""
    decoder = json.JSONDecoder()
    text = body.decode("utf-8", errors="replace")
    index, end = 0, len(text)
    while True:
        while index < end and text[index].isspace():
            index += 1
        if index >= end:
            return
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError as err:
            raise EngineError(f"malformed event data from the engine at byte {index}") from err
        if isinstance(value, dict):
            yield value


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
    except ValueError:
        pass
    return body[:200].decode("utf-8", errors="replace").strip() or "(empty body)"

"""Local stand-ins that speak the real contracts, for the task's tests and its benchmark.

- `AzureStub`: one HTTP server on loopback with Azure DevOps' OIDC token route and an
  ingestion route (Defender's or the mapping service's), each told how to behave: answer,
  redirect to a sign-in page, refuse, fail, hang, answer something that is not JSON, or ask the
  client to come back later (429 with Retry-After). It records every request it received.
- `HangingSocket`: a unix socket that accepts connections and never answers (a stuck engine).
- `EngineStub`: a unix-socket Docker Engine API serving `/_ping` and `/version`, with `/events`
  answering a given status and body (a failing engine, malformed event data).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import reply

TOKEN_PATH_PART = "/oidctoken"
INGEST_PATH = "/ingest/container-mappings"
HANG_LIMIT = 60.0  # a hanging handler gives up after this long even if the test never stops it


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    token: str = "ok"  # ok | redirect | 401 | 500 | hang | not-json
    ingest: str = "ok"  # ok | 500 | 429 | hang | 401
    oidc_token: str = "eyJoZWFkZXIi.eyJzdWIiOiJqb2IifQ.c2lnbmF0dXJlLXN0dWI"
    retry_after: str = "1"
    ingest_429_times: int = 1  # 429 this many times, then answer
    counts: dict[str, int] = field(default_factory=dict)


class AzureStub:
    """The token route and the ingestion route on one loopback port."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def collection_uri(self) -> str:
        return f"{self.base}/fabrikam/"

    @property
    def ingest_url(self) -> str:
        return f"{self.base}{INGEST_PATH}"

    def requests_to(self, part: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if part in r.path]

    def __enter__(self) -> AzureStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()

    def _record(self, request: Received) -> int:
        with self._lock:
            self.received.append(request)
            key = "token" if TOKEN_PATH_PART in request.path else "ingest"
            self.behaviour.counts[key] = self.behaviour.counts.get(key, 0) + 1
            return self.behaviour.counts[key]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = Received("POST", self.path, dict(self.headers.items()), body)
                count = stub._record(request)
                if TOKEN_PATH_PART in self.path:
                    self._token()
                elif self.path.startswith(INGEST_PATH):
                    self._ingest(count)
                else:
                    self._send(404, b"{}")

            def _token(self) -> None:
                mode = stub.behaviour.token
                if mode == "ok":
                    self._send(200, json.dumps({"oidcToken": stub.behaviour.oidc_token}).encode())
                elif mode == "redirect":
                    self._send(302, b"", {"Location": "https://login.example.invalid/signin"})
                elif mode == "not-json":
                    self._send(200, b"<html>Sign in</html>", {"Content-Type": "text/html"})
                elif mode == "hang":
                    stub.stop_event.wait(HANG_LIMIT)
                else:
                    self._send(int(mode), b'{"message":"no"}')

            def _ingest(self, count: int) -> None:
                mode = stub.behaviour.ingest
                if mode == "ok":
                    self._send(200, b'{"accepted":true}')
                elif mode == "429" and count > stub.behaviour.ingest_429_times:
                    self._send(200, b'{"accepted":true}')
                elif mode == "429":
                    self._send(429, b"{}", {"Retry-After": stub.behaviour.retry_after})
                elif mode == "hang":
                    stub.stop_event.wait(HANG_LIMIT)
                else:
                    self._send(int(mode), b'{"message":"no"}')

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def closed_port_url(path: str = INGEST_PATH) -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class HangingSocket:
    """A unix socket that accepts and never answers, like a wedged Docker engine."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cm-hang-")
        self.path = os.path.join(self._dir.name, "docker.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(16)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            self._held.append(conn)

    def __enter__(self) -> HangingSocket:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()
        self._dir.cleanup()


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class EngineStub:
    """A Docker Engine API on a unix socket whose `/events` answers what the test says."""

    def __init__(
        self, events_status: int = 200, events_body: bytes = b"", version: str = "27.0-stub"
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cm-engine-")
        self.path = os.path.join(self._dir.name, "docker.sock")
        self.events_status = events_status
        self.events_body = events_body
        self.version = version
        self.server = _UnixHTTPServer(self.path, self._handler())
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> EngineStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._dir.cleanup()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def address_string(self) -> str:
                return "unix"

            def do_GET(self) -> None:  # noqa: N802
                route = self.path.split("?", 1)[0].rstrip("/")
                if route.endswith("/_ping"):
                    self._send(200, b"OK")
                elif route.endswith("/version"):
                    self._send(
                        200, json.dumps({"Version": stub.version, "ApiVersion": "1.45"}).encode()
                    )
                elif route.endswith("/events"):
                    self._send(stub.events_status, stub.events_body)
                else:
                    self._send(404, b'{"message":"No such image"}')

            def _send(self, status: int, body: bytes) -> None:
                reply(self, status, body)

        return Handler

"""HTTPS stand-ins for the benchmark: Azure DevOps' OIDC token route and an ingestion route.

Two servers, as in a real job (the token comes from the organization's host, the report goes
to Defender's), each signed by a private CA made for the run and answering every request after
an added delay that stands for the network and the service: on a real agent both are tens to
hundreds of milliseconds away, which loopback hides.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.pki import Pki, TlsServer, make_pki, server_context
from tests.servers import reply, running

TOKEN_PART = "/oidctoken"
INGEST_PATH = "/ingest/container-mappings"
OIDC_TOKEN = "eyJoZWFkZXIi.eyJzdWIiOiJqb2IifQ.c2lnbmF0dXJlLXN0dWI"


class Standins:
    """The token server and the ingestion server, with `delay` seconds added to each answer."""

    def __init__(self, delay: float, pki: Pki | None = None) -> None:
        self.delay = delay
        self._dir = tempfile.TemporaryDirectory(prefix="cm-bench-pki-")
        self.pki = pki or make_pki(Path(self._dir.name))
        self.counts = {"token": 0, "ingest": 0}
        self._lock = threading.Lock()
        context = server_context(self.pki)
        self.token_server = TlsServer(self._handler(), context)
        self.ingest_server = TlsServer(self._handler(), context)
        self._stack = contextlib.ExitStack()

    @property
    def collection_uri(self) -> str:
        return f"https://127.0.0.1:{self.token_server.server_port}/fabrikam/"

    @property
    def ingest_url(self) -> str:
        return f"https://127.0.0.1:{self.ingest_server.server_port}{INGEST_PATH}"

    def take_counts(self) -> dict[str, int]:
        with self._lock:
            counts, self.counts = self.counts, {"token": 0, "ingest": 0}
            return counts

    def __enter__(self) -> Standins:
        self._stack.enter_context(running(self.token_server))
        self._stack.enter_context(running(self.ingest_server))
        self._stack.callback(self._dir.cleanup)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standins = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(standins.delay)
                if TOKEN_PART in self.path:
                    standins._count("token")
                    reply(self, 200, json.dumps({"oidcToken": OIDC_TOKEN}).encode())
                elif self.path.startswith(INGEST_PATH):
                    standins._count("ingest")
                    reply(self, 200, b'{"accepted":true}')
                else:
                    reply(self, 404, b"{}")

        return Handler

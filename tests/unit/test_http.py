"""The agent-side HTTP client against local servers: retries, Retry-After, bounded bodies, a
deadline that holds for headers, messages that never carry a URL's secrets, connection reuse."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from container_mapping.http import (
    MAX_BODY,
    HttpClient,
    RetryPolicy,
    TransportError,
    redact,
    retry_after,
    without_userinfo,
)
from tests.servers import serve

NO_PROXY: dict[str, str] = {}


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    statuses: list[int] = []
    seen: list[tuple[str, int]] = []  # (path, client port): which connection carried it

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append((self.path, self.client_address[1]))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        headers = {"Retry-After": "0"} if status == 429 else {}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _handler(*statuses: int) -> type[_Counting]:
    return type("Handler", (_Counting,), {"statuses": list(statuses), "seen": []})


def test_retries_the_statuses_it_should_then_answers() -> None:
    handler = _handler(503, 429, 200)
    with serve(handler) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/x"
        answer = HttpClient(environ=NO_PROXY).request("GET", url, deadline=time.monotonic() + 10)
    assert answer.status == 200 and len(handler.seen) == 3


def test_a_404_is_an_answer_not_a_retry() -> None:
    handler = _handler(404, 200)
    with serve(handler) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/x"
        assert HttpClient(environ=NO_PROXY).request("GET", url).status == 404
    assert len(handler.seen) == 1


def test_connections_are_reused_for_one_host() -> None:
    handler = _handler()
    with serve(handler) as server:
        client = HttpClient(environ=NO_PROXY)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for path in ("/a", "/b", "/c"):
            assert client.request("GET", base + path).ok
        client.close()
    assert [p for p, _ in handler.seen] == ["/a", "/b", "/c"]
    assert len({port for _, port in handler.seen}) == 1


def test_a_connection_opened_ahead_carries_the_next_request() -> None:
    handler = _handler()
    with serve(handler) as server:
        client = HttpClient(environ=NO_PROXY)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        client.connect(base + "/ingest", deadline=time.monotonic() + 5)
        opened = client._pool[("http", "127.0.0.1", server.server_address[1])].sock
        assert opened is not None and handler.seen == []  # connected, nothing sent yet
        local_port = opened.getsockname()[1]
        assert client.request("GET", base + "/ingest").ok
        client.close()
    assert handler.seen == [("/ingest", local_port)]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/x", "http://[::1/x", "ftp://host/x", "http://host:port/x"]
)
def test_opening_ahead_is_best_effort(url: str) -> None:
    client = HttpClient(environ=NO_PROXY)
    client.connect(url, deadline=time.monotonic() + 2)  # refused, malformed: nothing raised
    assert client._pool == {}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 3 ", 3.0), ("", None), ("soon", None), ("-5", None)],
)
def test_retry_after_in_seconds(header: str, seconds: float | None) -> None:
    assert retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = retry_after(when)
    assert wait is not None and 25 < wait <= 31


def test_the_backoff_honours_retry_after_but_caps_it() -> None:
    from container_mapping.http import Response

    policy = RetryPolicy()
    assert policy.delay(0, Response(429, {"retry-after": "2"}, b"", "u")) == 2.0
    assert policy.delay(0, Response(429, {"retry-after": "99999"}, b"", "u")) == 32.0
    assert policy.delay(3, None) == 4.0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host.example:8443/p/a?key=secret#frag", "https://host.example:8443/p/a"),
        ("https://[::1/x?key=secret", "<invalid URL>"),
        ("http://host/x?sig=secret", "http://host/x"),
    ],
)
def test_redact_drops_everything_secret(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_request_line_never_carries_user_info() -> None:
    assert without_userinfo("http://u:pw@host:8080/p?q=1") == "http://host:8080/p?q=1"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:notaport/x?key=hunter2", "https://[::1/x?key=hunter2", "ftp://h/x"]
)
def test_a_bad_url_is_a_transport_error_without_its_secrets(url: str) -> None:
    with pytest.raises(TransportError) as caught:
        HttpClient(environ=NO_PROXY).request("GET", url)
    assert "hunter2" not in str(caught.value)


def test_a_header_with_a_line_break_is_refused_without_echoing_it() -> None:
    with serve(_handler()) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/x"
        with pytest.raises(TransportError) as caught:
            HttpClient(environ=NO_PROXY).request(
                "GET", url, headers={"Authorization": "Bearer tok\r\nX-Evil: en"}
            )
    assert "tok" not in str(caught.value) and "Evil" not in str(caught.value)


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server that answers each connection with the bytes queued in `answers`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    answers: list[bytes] = []
    stop = threading.Event()

    def serve_forever() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def answer(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                for piece in answers:
                    if piece == b"<slow>":
                        while not stop.wait(0.2):
                            conn.sendall(b"a")
                    else:
                        conn.sendall(piece)
            except OSError:
                return

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    yield sock.getsockname()[1], answers
    stop.set()
    thread.join(2)
    sock.close()


def test_the_deadline_holds_while_headers_trickle(raw_server: tuple[int, list[bytes]]) -> None:
    port, answers = raw_server
    answers += [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"<slow>"]
    started = time.monotonic()
    with pytest.raises(TransportError, match="no answer within"):
        HttpClient(environ=NO_PROXY, retry=RetryPolicy(attempts=1)).request(
            "GET", f"http://127.0.0.1:{port}/x", deadline=started + 1.0
        )
    assert time.monotonic() - started < 2.5


def test_a_body_past_the_limit_is_cut_and_json_refuses_it(
    raw_server: tuple[int, list[bytes]],
) -> None:
    port, answers = raw_server
    answers += [b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", b"[" * 300_000]
    answer = HttpClient(environ=NO_PROXY).request(
        "GET", f"http://127.0.0.1:{port}/x", deadline=time.monotonic() + 5, max_body=100_000
    )
    assert answer.truncated and len(answer.body) == 100_000 and answer.status == 200
    with pytest.raises(Exception, match="larger than"):
        answer.json()
    assert MAX_BODY == 1024 * 1024

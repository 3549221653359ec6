"""The engine client's HTTP/1.1 reading: chunked, sized and to-the-end bodies, and bad answers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from container_mapping.engine import _json_stream, _read_response
from container_mapping.errors import EngineError


def _answer(raw: bytes, deadline: float | None = None, limit: int = 1 << 20) -> tuple[int, bytes]:
    status, body, truncated = _answer_cut(raw, deadline, limit)
    assert not truncated
    return status, body


def _answer_cut(raw: bytes, deadline: float | None, limit: int) -> tuple[int, bytes, bool]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)

    def send() -> None:
        with theirs, contextlib.suppress(OSError):  # the reader may hang up first, on purpose
            for index in range(0, len(raw), 7):  # in small pieces, as a network may deliver
                theirs.sendall(raw[index : index + 7])

    sender = threading.Thread(target=send)
    sender.start()
    try:
        return _read_response(ours, deadline, limit)
    finally:
        ours.close()
        sender.join()


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, rest = b"", body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    return out + b"0\r\n\r\n"


@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=40), max_size=8))
@settings(max_examples=50, deadline=None)
def test_chunked_bodies_are_reassembled(body: bytes, sizes: list[int]) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
    assert _answer(head + _chunked(body, sizes)) == (200, body)


def test_a_sized_body_stops_at_its_length() -> None:
    raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nhello and more"
    assert _answer(raw) == (404, b"hello")


def test_without_length_the_body_runs_to_the_end() -> None:
    assert _answer(b'HTTP/1.0 200 OK\r\nServer: x\r\n\r\n{"a": 1}') == (200, b'{"a": 1}')


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n",
    ],
)
def test_what_is_not_a_whole_http_answer_is_an_engine_error(raw: bytes) -> None:
    with pytest.raises(EngineError):
        _answer(raw)


def test_a_deadline_in_the_past_stops_reading() -> None:
    with pytest.raises(TimeoutError):
        _answer(b"HTTP/1.1 200 OK\r\n\r\nbody", deadline=time.monotonic() - 1)


@pytest.mark.parametrize("framing", ["sized", "chunked", "to-the-end"])
def test_a_body_past_the_limit_is_cut_there(framing: str) -> None:
    body = b'{"id": 1}' * 2000
    if framing == "sized":
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    elif framing == "chunked":
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(body, [500] * 40)
    else:
        raw = b"HTTP/1.1 200 OK\r\n\r\n" + body
    status, got, truncated = _answer_cut(raw, None, 4096)
    assert (status, truncated) == (200, True)
    assert len(got) < 4096 and body.startswith(got[:100])


def test_a_cut_event_stream_keeps_the_whole_events_before_the_cut() -> None:
    events = list(_json_stream(b'{"a": 1}\n{"b": 2}\n{"c": 3}', truncated=False))
    assert events == [{"a": 1}, {"b": 2}, {"c": 3}]
    seen = []
    with pytest.raises(EngineError, match="larger than"):
        for event in _json_stream(b'{"a": 1}\n{"b": 2}\n{"c"', truncated=True):
            seen.append(event)
    assert seen == [{"a": 1}, {"b": 2}]

"""The recorder against a stand-in engine on a unix socket: restarts, limits, and its file.

The stand-in speaks the engine's `/events` stream as moby does (chunked JSON lines); "restarting"
it closes the stream and refuses connections for a while, as a restarting engine does.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from container_mapping import recorder
from container_mapping.recorder import FILE_NAME, read, start


def _event(action: str, name: str, nano: int) -> bytes:
    actor = {"ID": name, "Attributes": {"name": name}}
    raw = {"Type": "image", "Action": action, "Actor": actor, "timeNano": nano, "id": name}
    return json.dumps(raw).encode() + b"\n"


class RestartingEngine:
    """First connection: one push, then the engine 'dies'; after it: another push, then idle."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.queries: list[dict[str, list[str]]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        first = True
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            request = conn.recv(65536).split(b"\r\n")[0].decode()
            target = request.split(" ")[1]
            self.queries.append(urllib.parse.parse_qs(urllib.parse.urlsplit(target).query))
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            body = _event("push", "r.example/app:1" if first else "r.example/app:2", _now(first))
            conn.sendall(b"%x\r\n%s\r\n" % (len(body), body))
            if first:
                conn.close()  # the engine goes away mid-stream
                first = False
                time.sleep(1.5)
                continue
            self.stop.wait(30)
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def _now(first: bool) -> int:
    return time.time_ns() - (2_000_000_000 if first else 0)


@pytest.fixture
def temp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    (tmp_path / f"{FILE_NAME}.done").touch()  # ends any recorder the test left


def _wait_for(predicate: object, within: float = 10.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_it_follows_a_restarted_engine_from_its_last_event(temp: Path) -> None:
    engine = RestartingEngine(temp / "engine.sock")
    try:
        since = time.time() - 10
        path = start(
            {"AGENT_TEMPDIRECTORY": str(temp), "DOCKER_HOST": f"unix://{engine.path}"}, since
        )
        assert path == str(temp / FILE_NAME)
        assert _wait_for(lambda: len(read_events(path)) == 2), read_events(path)
        first_since = float(engine.queries[0]["since"][0])
        second_since = float(engine.queries[1]["since"][0])
        assert abs(first_since - since) < 0.01
        assert second_since == pytest.approx(read_events(path)[0]["timeNano"] / 1e9, abs=1e-3)
        assert json.loads(engine.queries[1]["filters"][0]) == {
            "type": ["image"],
            "event": ["push", "tag"],
        }
        recording = read(path, since)
        assert recording.complete and recording.problem is None
        assert [e["Actor"]["ID"] for e in recording.events] == [
            "r.example/app:1",
            "r.example/app:2",
        ]
    finally:
        engine.close()


def read_events(path: str) -> list[dict[str, object]]:
    try:
        lines = Path(path).read_bytes().split(b"\n")[1:]
    except OSError:
        return []
    return [e for e in (json.loads(x) for x in lines if x.strip()) if "timeNano" in e]


def test_it_ends_when_its_file_is_read(temp: Path) -> None:
    engine = RestartingEngine(temp / "engine.sock")
    try:
        path = start(
            {"AGENT_TEMPDIRECTORY": str(temp), "DOCKER_HOST": f"unix://{engine.path}"}, time.time()
        )
        # the recorder creates its file, then writes its first line: wait for the whole line
        assert path is not None and _wait_for(
            lambda: Path(path).exists() and b"\n" in Path(path).read_bytes()
        )
        pid = json.loads(Path(path).read_bytes().split(b"\n")[0])["pid"]
        read(path, time.time())
        assert _wait_for(lambda: not _running(pid), within=5)
    finally:
        engine.close()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_no_recorder_for_an_engine_it_cannot_follow_or_without_a_temp_directory(
    temp: Path,
) -> None:
    assert (
        start({"AGENT_TEMPDIRECTORY": str(temp), "DOCKER_HOST": "tcp://10.0.0.1:2375"}, 0) is None
    )
    assert start({"AGENT_TEMPDIRECTORY": str(temp), "DOCKER_CONTEXT": "remote"}, 0) is None
    assert start({"DOCKER_HOST": f"unix://{temp}/x.sock"}, 0) is None
    assert (
        start({"AGENT_TEMPDIRECTORY": "relative", "DOCKER_HOST": f"unix://{temp}/x.sock"}, 0)
        is None
    )


def test_a_file_it_did_not_write_is_refused_and_one_cut_says_so(temp: Path) -> None:
    path = temp / FILE_NAME
    path.write_text('{"recorder": 2, "pid": 1, "since": 0}\n')
    assert read(str(path), 0).problem == "the recorder's file is not one it wrote"
    header = {"recorder": 1, "pid": os.getpid(), "since": 0.0, "started": 0.0}
    event = json.loads(_event("push", "r.example/app:1", 5))
    lines = [header, event, {"cut": True}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cut = read(str(path), 0)
    assert not cut.complete and "size limit" in str(cut.problem) and len(cut.events) == 1
    assert (temp / f"{FILE_NAME}.done").exists()


def test_its_output_stops_at_the_size_limit(temp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "MAX_FILE", 1024)
    fd = os.open(temp / "out", os.O_WRONLY | os.O_CREAT)
    out = recorder._Output(fd)
    for i in range(100):
        out.write({"n": i, "pad": "x" * 50})
    os.close(fd)
    data = (temp / "out").read_bytes()
    assert len(data) <= 1024 and data.endswith(b'{"cut":true}\n')


def test_a_push_clients_credentials_never_reach_the_file() -> None:
    argv = [b"--tls-verify=false", b"--creds", b"user:s3cr/et", b"-q", b"127.0.0.1:5000/team/app:1"]
    assert recorder._references(argv) == ["127.0.0.1:5000/team/app:1"]
    assert recorder._references([b"docker.io/team/app", b"--digestfile", b"/tmp/d"]) == [
        "docker.io/team/app"
    ]


def test_a_running_push_client_is_recorded_with_its_job() -> None:
    """A process named `docker` (tail -F, waiting for missing files) with a job's variables."""
    import subprocess

    env = {"SYSTEM_JOBID": "job-9", "BUILD_BUILDID": "77", "SECRET_TOKEN": "never-kept"}
    process = subprocess.Popen(
        ["docker", "-F", "push", "r.example/team/app:1"],
        executable="/usr/bin/tail",
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.2)
        found = recorder._pusher(process.pid)
    finally:
        process.kill()
        process.wait()
    assert found is not None
    assert (found["job"], found["run"], found["refs"]) == ("job-9", "77", ["r.example/team/app:1"])
    assert "never-kept" not in json.dumps(found)

"""Regressions for the holes an adversarial pass found, each through the shim as the agent runs it.

Every case here failed on the code before the fix: another run's records reached the sink, a
variable chose the interpreter, bodies were read without a limit, the deadline missed headers
and grandchildren, secrets reached messages, inputs ended as "unexpected" errors. The budget
checks are properties of the step (it promises to end within its input), not benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.images import build, push

from .shim import (
    ACCESS_TOKEN,
    AGENT,
    SHIM,
    Run,
    assert_secrets_kept,
    node,
    pipeline_env,
    pre_job,
    run_task,
)
from .stubs import AzureStub, EngineStub

BUDGET = 5


def _env(stub: AzureStub, **extra: str) -> dict[str, str]:
    inputs = {
        "INPUT_ENDPOINT": stub.ingest_url,
        "INPUT_PROTOCOL": "mapping-service",
        "INPUT_TIMEOUTSECONDS": str(BUDGET),
    }
    return pipeline_env(stub.collection_uri, **{**inputs, **extra})


@pytest.fixture
def docker_client(docker_host: str) -> Iterator[object]:
    import docker  # type: ignore[import-untyped]

    client = docker.DockerClient(base_url=docker_host, timeout=60)
    yield client
    client.close()


@contextlib.contextmanager
def _job_that_pushed(
    client: object, docker_host: str, reference: str
) -> Iterator[tuple[AzureStub, dict[str, str]]]:
    """A job whose pre-job ran, then built and pushed `reference`; post-job's environment."""
    with AzureStub() as stub:
        env = pre_job(_env(stub, DOCKER_HOST=docker_host))
        build(client, reference)
        push(client, reference)
        time.sleep(0.05)  # the engine stamps events with its own clock
        yield stub, env


def _within_budget(run: Run) -> None:
    assert run.seconds < BUDGET + 1, f"the step took {run.seconds:.1f}s of a {BUDGET}s budget"
    assert run.code == 0, run
    assert len(run.warnings) <= 1, run


# -- 1. another run's data never leaves the job ---------------------------------------------


@pytest.mark.docker
@pytest.mark.node
def test_another_runs_images_and_built_only_images_stay_on_the_agent(
    docker_host: str, registry_addr: str
) -> None:
    import docker  # type: ignore[import-untyped]

    client = docker.DockerClient(base_url=docker_host, timeout=60)
    repo_name = f"cmtest/holes-{uuid.uuid4().hex[:10]}"
    repo = f"{registry_addr}/{repo_name}"
    with AzureStub() as stub:
        env = pre_job(_env(stub, DOCKER_HOST=docker_host))
        build(client, f"{repo}:ours")
        other_labels = {
            "com.azure.dev.image.build.builduri": "vstfs:///Build/Build/999",
            "db.password": "hunter2-label-secret",
        }
        build(client, f"{repo}:theirs", labels=other_labels)
        build(client, f"{repo}:built-only", labels={"note": "neighbour-built-only"})
        push(client, f"{repo}:ours")
        push(client, f"{repo}:theirs")
        time.sleep(0.05)
        run = run_task({**env, "SYSTEM_DEBUG": "true"})
    client.close()
    _within_budget(run)
    (sent,) = stub.requests_to("/v1/") or stub.requests_to("container-mappings")
    body = sent.body.decode()
    assert "hunter2-label-secret" not in body and "neighbour-built-only" not in body
    report = sent.json()
    assert [i["tag"] for i in report["images"] if i["repository"].endswith(repo_name)] == ["ours"]
    assert all(i["pushed"] for i in report["images"])
    assert report["skipped"] == []
    debug = [c.message for c in run.commands if c.name == "task.debug"]
    assert any("theirs" in m and "another run" in m for m in debug), debug
    assert any("built-only" in m and "not pushed" in m for m in debug), debug
    assert "hunter2" not in run.stdout


# -- 2. nothing another step can set chooses what runs or widens the window -------------------


@pytest.mark.node
def test_a_step_cannot_choose_the_interpreter(tmp_path: Path) -> None:
    marker = tmp_path / "ran-with-the-token"
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    for name in ("python3", "python", "evil-python"):
        script = evil_dir / name
        script.write_text(f'#!/bin/sh\nenv > "{marker}"\nexit 0\n')
        script.chmod(0o755)
    with AzureStub() as stub:
        env = _env(stub, DOCKER_HOST=f"unix://{tmp_path}/none.sock")
        step = {
            "CONTAINERMAPPING_PYTHON": str(evil_dir / "evil-python"),  # task.setvariable
            "PATH": f"{evil_dir}:{env['PATH']}",  # task.prependpath
        }
        post = run_task(env, step_env=step)
        pre = run_task(env, "pre-job", step_env=step)
    assert not marker.exists(), "a step's executable ran with the job's token"
    assert post.code == 0 and "no Docker engine reachable" in post.warnings[0], post
    assert pre.code == 0 and "CONTAINERMAPPING_JOBSTART" in pre.variables(), pre


@pytest.mark.docker
@pytest.mark.node
def test_a_forged_job_start_cannot_reach_before_the_run(
    docker_host: str, registry_addr: str
) -> None:
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=60)
    repo = f"{registry_addr}/cmtest/window-{uuid.uuid4().hex[:10]}"
    build(client, f"{repo}:earlier-run")
    push(client, f"{repo}:earlier-run")
    time.sleep(2.5)  # the run's start has whole seconds, and the window a second of slack
    run_start = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
    time.sleep(1.1)
    build(client, f"{repo}:this-run")
    push(client, f"{repo}:this-run")
    client.close()
    time.sleep(0.05)
    with AzureStub() as stub:
        env = _env(
            stub,
            DOCKER_HOST=docker_host,
            SYSTEM_PIPELINESTARTTIME=run_start,
            CONTAINERMAPPING_JOBSTART="2000-01-01T00:00:00Z",  # set by a step, hours back
        )
        run = run_task(env)
    _within_budget(run)
    (sent,) = stub.requests_to("/v1/") or stub.requests_to("container-mappings")
    assert [i["tag"] for i in sent.json()["images"] if repo in i["reference"]] == ["this-run"]


@pytest.mark.docker
@pytest.mark.node
def test_pre_job_makes_the_start_read_only(docker_host: str) -> None:
    with AzureStub() as stub:
        run = run_task(_env(stub, DOCKER_HOST=docker_host), "pre-job")
    (command,) = [c for c in run.commands if c.name == "task.setvariable"]
    assert command.properties == {"variable": "ContainerMapping.JobStart", "isreadonly": "true"}


# -- 3. every body is bounded ------------------------------------------------------------------


class _EndlessServer:
    """Answers every request on loopback with `head`, then an endless body."""

    def __init__(self, head: bytes, unix_path: str | None = None) -> None:
        family = socket.AF_UNIX if unix_path else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind(unix_path or ("127.0.0.1", 0))
        self._sock.listen(8)
        self._head, self._stop = head, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self._head)
                chunk = b'{"Type":"container","Action":"exec_start","time":1}\n' * 1000
                framed = (
                    b"%x\r\n%s\r\n" % (len(chunk), chunk) if b"chunked" in self._head else chunk
                )
                while not self._stop.is_set():
                    conn.sendall(framed)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def endless_engine(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "docker.sock")
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    server = _EndlessServer(head, path)
    yield f"unix://{path}"
    server.close()


#: Runs argv[1:] and prints the largest RSS (KiB) of that process and its reaped descendants.
#: A small process of its own does the fork: a child forked from the test process would count
#: the test process's own pages (hundreds of MiB late in the suite) as its peak.
_PEAK_RSS = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, _, usage = os.wait4(child.pid, 0)
child.returncode = 0
print(usage.ru_maxrss)
"""


def _peak_rss_mib(env: dict[str, str]) -> float:
    """Run post-job as `run_task` does, and return the largest RSS of the step's processes."""
    argv = ["/bin/sh", "-c", AGENT, node(), str(SHIM)]
    done = subprocess.run(
        [sys.executable, "-S", "-c", _PEAK_RSS, *argv],
        env={**env, "INPUT_COMMAND": "post-job"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip()) / 1024


@pytest.mark.node
def test_an_endless_engine_answer_is_cut_and_memory_stays_small(endless_engine: str) -> None:
    with AzureStub() as stub:
        run = run_task(_env(stub, DOCKER_HOST=endless_engine))
        peak_mib = _peak_rss_mib(_env(stub, DOCKER_HOST=endless_engine))
    _within_budget(run)
    assert peak_mib < 200, f"the step grew to {peak_mib:.0f} MiB"
    assert len(run.warnings) == 1 and "larger than" in run.warnings[0], run


@pytest.mark.docker
@pytest.mark.node
@pytest.mark.parametrize("route", ["token", "sink"])
def test_an_endless_token_or_sink_answer_is_cut(
    docker_client: object, docker_host: str, registry_addr: str, route: str
) -> None:
    reference = f"{registry_addr}/cmtest/endless-{uuid.uuid4().hex[:10]}:1"
    endless = _EndlessServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    with _job_that_pushed(docker_client, docker_host, reference) as (_, env):
        bad = f"http://127.0.0.1:{endless.port}"
        if route == "token":
            env = {**env, "SYSTEM_COLLECTIONURI": f"{bad}/fabrikam/"}
        else:
            env = {**env, "INPUT_ENDPOINT": f"{bad}/v1/reports"}
        run = run_task(env)
    endless.close()
    _within_budget(run)
    if route == "token":
        assert "without an oidcToken" in run.warnings[0] or "larger" in run.warnings[0], run
    else:  # the report was taken (200); what follows the status is not needed
        assert run.warnings == [] and "container-mapping: mapped " in run.plain_lines[-1], run


# -- 4. the deadline holds for headers and for grandchildren ------------------------------------


def _trickling_sink() -> tuple[socket.socket, threading.Event]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.3):
                    conn.sendall(b"a")  # a header that never ends
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return sock, stop


@pytest.mark.docker
@pytest.mark.node
@pytest.mark.parametrize("wrapper", [False, True], ids=["python3", "wrapper-script"])
def test_a_trickling_sink_cannot_hold_the_step(
    docker_client: object, docker_host: str, registry_addr: str, tmp_path: Path, wrapper: bool
) -> None:
    reference = f"{registry_addr}/cmtest/trickle-{uuid.uuid4().hex[:10]}:1"
    sink, stop = _trickling_sink()
    with _job_that_pushed(docker_client, docker_host, reference) as (_, env):
        env["INPUT_ENDPOINT"] = f"http://127.0.0.1:{sink.getsockname()[1]}/v1/reports"
        if wrapper:  # a python3 that is a script, without exec: Python is a grandchild
            bin_dir = tmp_path / "bin"
            bin_dir.mkdir()
            real = shutil.which("python3")
            (bin_dir / "python3").write_text(f'#!/bin/sh\n"{real}" "$@"\nexit $?\n')
            (bin_dir / "python3").chmod(0o755)
            env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
        run = run_task(env, timeout=60)
    stop.set()
    sink.close()
    _within_budget(run)
    assert len(run.warnings) == 1, run


# -- 5. no secret in any message ------------------------------------------------------------------


@pytest.mark.node
def test_an_endpoints_query_never_reaches_a_message(tmp_path: Path) -> None:
    with AzureStub() as stub:
        for endpoint in (
            "http://127.0.0.1:1/v1/reports?code=hunter2-query",
            "https://mapping.example:notaport/v1?code=hunter2-query",
            "https://[::1/v1?code=hunter2-query",
            "https://user:hunter2-query@mapping.example/v1",
        ):
            env = _env(stub, DOCKER_HOST=f"unix://{tmp_path}/x.sock", INPUT_ENDPOINT=endpoint)
            run = run_task(env)
            assert run.code == 0 and len(run.warnings) == 1, run
            assert "unexpected" not in run.warnings[0]
            assert "hunter2" not in run.stdout + run.stderr, endpoint


@pytest.mark.docker
@pytest.mark.node
def test_a_token_with_a_line_break_is_refused_and_never_printed(
    docker_client: object, docker_host: str, registry_addr: str
) -> None:
    reference = f"{registry_addr}/cmtest/crlf-{uuid.uuid4().hex[:10]}:1"
    token = "crlfTokenHead\r\nX-Injected: crlfTokenTail"
    with _job_that_pushed(docker_client, docker_host, reference) as (stub, env):
        env["ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN"] = token
        run = run_task({**env, "SYSTEM_DEBUG": "true"})
    _within_budget(run)
    assert "characters no token has" in run.warnings[0], run
    assert_secrets_kept(run, "crlfTokenHead", "crlfTokenTail", ACCESS_TOKEN)
    assert stub.requests_to("oidctoken") == []


# -- 6 and 7. inputs, and no logging command smuggled through a message ---------------------------


@pytest.mark.node
@pytest.mark.parametrize("timeout", ["abc", "1e9", "1_0", "٣"])
def test_a_bad_timeout_is_one_line_and_pre_job_never_fails_on_it(
    tmp_path: Path, timeout: str
) -> None:
    with AzureStub() as stub:
        env = _env(
            stub,
            DOCKER_HOST=f"unix://{tmp_path}/x.sock",
            INPUT_TIMEOUTSECONDS=timeout,
            INPUT_FAILONERROR="true",
        )
        pre = run_task(env, "pre-job")
        post = run_task(env)
    assert pre.code == 0 and pre.warnings == [] and pre.errors == [], pre
    assert any("input timeoutSeconds" in w and "used 30" in w for w in post.warnings), post


@pytest.mark.node
def test_an_engine_message_cannot_smuggle_a_command() -> None:
    message = "boom\x1b[2K\u2028##vso[task.setvariable variable=Evil]1\x85##vso[task.complete]x"
    body = json.dumps({"message": message}).encode()
    with EngineStub(events_status=500, events_body=body) as engine, AzureStub() as stub:
        run = run_task(_env(stub, DOCKER_HOST=engine.url))
    assert run.code == 0 and len(run.warnings) == 1, run
    for line in run.stdout.splitlines():
        assert not set(line) & {"\x1b", "\u2028", "\x85"}, line
    assert [c.name for c in run.commands if c.name != "task.logissue"] in ([], ["task.setsecret"])
    assert "Evil" not in run.variables()

"""The recorder pre-job starts, through `node task/index.js`, against the real engine.

Here the agent's worker process is this test process (node's parent), which lives through the
job as the real one does; a cancelled job is an agent process that is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

from container_mapping.recorder import FILE_NAME
from tests.integration.images import LABEL, build, image_archive, push

from .shim import SHIM, Run, node, pipeline_env
from .stubs import AzureStub

pytestmark = [pytest.mark.docker, pytest.mark.node]


def _agent_run(env: Mapping[str, str], command: str) -> Run:
    """node index.js as a child of this process: the agent stays alive after the step."""
    started = time.monotonic()
    done = subprocess.run(
        [node(), str(SHIM)],
        env={**env, "INPUT_COMMAND": command},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


class Job:
    def __init__(self, tmp: Path, stub: AzureStub, docker_host: str) -> None:
        self.temp = tmp / "_temp"
        self.temp.mkdir()
        (tmp / "s").mkdir()
        self.env = pipeline_env(
            stub.collection_uri,
            DOCKER_HOST=docker_host,
            INPUT_ENDPOINT=stub.ingest_url,
            INPUT_PROTOCOL="mapping-service",
            INPUT_TIMEOUTSECONDS="30",
            AGENT_TEMPDIRECTORY=str(self.temp),
            BUILD_SOURCESDIRECTORY=str(tmp / "s"),
        )
        self.stub = stub

    @property
    def file(self) -> Path:
        return self.temp / FILE_NAME

    def pre_job(self) -> Run:
        run = _agent_run(self.env, "pre-job")
        assert run.code == 0 and not run.warnings, run
        self.env = {**self.env, **run.variables()}
        return run

    def post_job(self) -> tuple[Run, dict[str, Any]]:
        run = _agent_run(self.env, "post-job")
        assert run.code == 0 and run.errors == [], run
        sent = self.stub.requests_to("/ingest/")
        return run, (sent[-1].json() if sent else {})

    def recorder_pid(self) -> int:
        for _ in range(100):
            if self.file.exists() and self.file.read_bytes().endswith(b"\n"):
                return int(json.loads(self.file.read_bytes().split(b"\n")[0])["pid"])
            time.sleep(0.05)
        raise AssertionError("the recorder wrote no header")


@pytest.fixture
def job(tmp_path: Path, docker_host: str) -> Iterator[Job]:
    with AzureStub() as stub:
        made = Job(tmp_path, stub, docker_host)
        yield made
        (made.temp / f"{FILE_NAME}.done").touch()  # whatever happened, no recorder outlives it


def _gone(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def churn(docker_client: Any, docker_host: str) -> Iterator[Any]:
    """Makes 300+ image events on the engine (past its 256-event buffer) in one `load`."""
    run = uuid.uuid4().hex[:12]

    def make() -> None:
        docker_client.images.load(image_archive(0, 320, run))

    yield make
    cleaner = docker.APIClient(base_url=docker_host, timeout=600)
    try:  # a loaded engine takes minutes to untag 320 images: tidy up, but never fail for it
        cleaner.prune_images(filters={"dangling": False, "label": f"{LABEL}={run}"})
    except docker.errors.DockerException:
        pass
    finally:
        cleaner.close()


def _pushed(report: Mapping[str, Any], repo: str) -> dict[str, str]:
    """This test's pushes (the engine is shared: other tests push in the same window)."""
    return {
        i["reference"].split("@")[0]: i["digest"]
        for i in report.get("images", ())
        if i["pushed"] and i["reference"].startswith(f"{repo}:")
    }  # a report of nothing is not sent: {}


def test_an_early_push_survives_hundreds_of_later_engine_events(
    job: Job, docker_client: Any, unique_repo: str, churn: Any
) -> None:
    job.pre_job()
    pid = job.recorder_pid()
    early = f"{unique_repo}:early"
    build(docker_client, early)
    digest = push(docker_client, early)
    churn()
    time.sleep(0.3)
    run, report = job.post_job()
    assert not any("256" in w or "recorder" in w for w in run.warnings), run
    assert _pushed(report, unique_repo) == {early: digest}
    mine = [i for i in report["images"] if i["reference"].startswith(f"{unique_repo}:")]
    assert [i["sources"] for i in mine] == [["docker"]]
    assert _gone(pid), "the recorder did not end once post-job had read it"


def test_without_the_recorder_the_same_job_loses_its_early_push(
    job: Job, docker_client: Any, unique_repo: str, churn: Any
) -> None:
    """The control: the same job without AGENT_TEMPDIRECTORY gets no recorder."""
    job.env.pop("AGENT_TEMPDIRECTORY")
    job.pre_job()
    early = f"{unique_repo}:early"
    build(docker_client, early)
    push(docker_client, early)
    churn()
    time.sleep(0.3)
    run, report = job.post_job()
    assert early not in _pushed(report, unique_repo)
    assert any("keeps only its last 256 events" in w for w in run.warnings), run


def test_pre_job_returns_at_once_and_holds_none_of_the_steps_output(job: Job) -> None:
    run = job.pre_job()
    pid = job.recorder_pid()
    assert run.seconds < 5  # capture_output: the pipes closed, so nothing of ours held them
    fds = os.listdir(f"/proc/{pid}/fd")
    targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}
    assert not any(t.startswith("pipe:") for t in targets), targets
    assert os.getsid(pid) == pid  # its own session: the shim's process group kill misses it


@pytest.mark.parametrize("damage", ["killed", "truncated", "garbage", "removed"])
def test_a_damaged_recorder_falls_back_once_and_reports_nothing_twice(
    job: Job, docker_client: Any, unique_repo: str, damage: str
) -> None:
    job.pre_job()
    pid = job.recorder_pid()
    reference = f"{unique_repo}:{damage}"
    build(docker_client, reference)
    digest = push(docker_client, reference)
    time.sleep(0.3)
    if damage == "killed":
        os.kill(pid, signal.SIGKILL)
        assert _gone(pid)
    elif damage == "truncated":
        data = job.file.read_bytes()
        job.file.write_bytes(data[: len(data) // 2 + 5])
    elif damage == "garbage":
        job.file.write_bytes(os.urandom(2048))
    else:
        job.file.unlink()
    run, report = job.post_job()
    assert _pushed(report, unique_repo) == {reference: digest}  # from the engine's buffer, once
    assert len(report["images"]) == len({i["reference"] for i in report["images"]})
    assert len(run.warnings) == 1 and "recorder" in run.warnings[0], run
    assert _gone(pid), "the recorder outlived a damaged file"


def test_a_cancelled_job_leaves_no_recorder(job: Job) -> None:
    agent = subprocess.Popen(
        ["/bin/sh", "-c", '"$0" "$1"; sleep 600', node(), str(SHIM)],
        env={**job.env, "INPUT_COMMAND": "pre-job"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid = job.recorder_pid()
        assert not _gone(pid, within=1.0)
        agent.kill()  # the agent's worker ends with a cancelled job
        agent.wait()
        assert _gone(pid), "the recorder outlived the agent process"
    finally:
        agent.kill()


def _step_push(job: Job, reference: str) -> None:
    """`docker push` as a step of `job` runs it: the job's variables in its environment."""
    done = subprocess.run(
        [shutil.which("docker") or "docker", "push", "-q", reference],
        env=job.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_two_overlapping_jobs_on_one_engine_each_report_exactly_their_own(
    tmp_path: Path, docker_host: str, docker_client: Any, unique_repo: str
) -> None:
    with AzureStub() as stub_a, AzureStub() as stub_b:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        jobs = {
            "a": Job(tmp_path / "a", stub_a, docker_host),
            "b": Job(tmp_path / "b", stub_b, docker_host),
        }
        jobs["b"].env.update(
            SYSTEM_JOBID="b2c3d4e5-0000-4000-8000-00000000000b", BUILD_BUILDID="5678"
        )
        try:
            for job in jobs.values():
                job.pre_job()
                job.recorder_pid()
            mine: dict[str, set[str]] = {}
            for name, job in jobs.items():
                labelled, plain = f"{unique_repo}:{name}-labelled", f"{unique_repo}:{name}-plain"
                run_uri = f"vstfs:///Build/Build/{job.env['BUILD_BUILDID']}"
                build(
                    docker_client, labelled, labels={"com.azure.dev.image.build.builduri": run_uri}
                )
                build(docker_client, plain)
                mine[name] = {labelled, plain}
            for reference in sorted(mine["a"] | mine["b"]):  # interleaved: a, b, a, b
                _step_push(jobs[reference.rsplit(":", 1)[1][0]], reference)
            time.sleep(0.3)
            reports = {name: job.post_job()[1] for name, job in jobs.items()}
        finally:
            for job in jobs.values():
                (job.temp / f"{FILE_NAME}.done").touch()
    for name, report in reports.items():
        assert set(_pushed(report, unique_repo)) == mine[name], name
        bases = {i["reference"].split("@")[0]: i["attribution"]["basis"] for i in report["images"]}
        assert bases[f"{unique_repo}:{name}-labelled"] == "label"
        assert bases[f"{unique_repo}:{name}-plain"] == "process"

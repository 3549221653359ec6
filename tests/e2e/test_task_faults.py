"""The fault matrix of the task: every fault ends in exit 0 and at most one warning, within
the `timeoutSeconds` budget, with no token text in the output; with `failOnError: true` the
same faults end in one error, a failed task and a non-zero exit.

The budget check (`run.seconds < budget`) is a correctness property of the step (it promises
to end within its input), not a benchmark: budgets here are a few seconds and the faults hang
for good.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.images import build, push

from .shim import ACCESS_TOKEN, SHIM, Run, assert_secrets_kept, pipeline_env, pre_job, run_task
from .stubs import AzureStub, Behaviour, EngineStub, HangingSocket, closed_port_url

BUDGET = 5  # seconds: the timeoutSeconds input of every fault case
ROOT = Path(__file__).parents[2]


@dataclass
class Job:
    """A job that pushed one image to the real registry, and pre-job's variables for it."""

    variables: dict[str, str]
    reference: str
    digest: str


@pytest.fixture(scope="module")
def job(docker_host: str, registry_addr: str) -> Iterator[Job]:
    import docker  # type: ignore[import-untyped]

    client = docker.DockerClient(base_url=docker_host, timeout=60)
    with AzureStub() as stub:
        variables = pre_job(pipeline_env(stub.collection_uri, DOCKER_HOST=docker_host))
    reference = f"{registry_addr}/cmtest/faults-{uuid.uuid4().hex[:10]}:1"
    build(client, reference)
    digest = push(client, reference)
    time.sleep(0.05)
    yield Job(
        {k: v for k, v in variables.items() if k.startswith("CONTAINERMAPPING_")}, reference, digest
    )
    client.close()


def _env(stub: AzureStub, *, fail: bool = False, **extra: str) -> dict[str, str]:
    return pipeline_env(
        stub.collection_uri,
        INPUT_ENDPOINT=stub.ingest_url,
        INPUT_PROTOCOL="defender",
        INPUT_TIMEOUTSECONDS=str(BUDGET),
        INPUT_FAILONERROR="true" if fail else "false",
        **extra,
    )


def _check_fault(run: Run, stub: AzureStub, *, fail: bool, warned: bool = True) -> None:
    assert run.seconds < BUDGET, f"the step took {run.seconds:.1f}s of a {BUDGET}s budget"
    assert_secrets_kept(run, ACCESS_TOKEN, stub.behaviour.oidc_token)
    if fail:
        assert run.code != 0, run
        assert len(run.errors) == 1 and run.failed and run.warnings == [], run
        assert run.errors[0].startswith("container-mapping: ")
    else:
        assert run.code == 0, run
        assert run.errors == [] and not run.failed, run
        assert len(run.warnings) == (1 if warned else 0), run
        if warned:
            assert run.warnings[0].startswith("container-mapping: ")


# -- the engine ----------------------------------------------------------------------------


@pytest.mark.node
@pytest.mark.parametrize("fail", [False, True], ids=["warn", "failOnError"])
def test_no_engine_at_the_configured_address(tmp_path: Path, fail: bool) -> None:
    with AzureStub() as stub:
        run = run_task(_env(stub, fail=fail, DOCKER_HOST=f"unix://{tmp_path}/docker.sock"))
    _check_fault(run, stub, fail=fail)
    assert "no Docker engine reachable" in (run.errors + run.warnings)[0]
    assert stub.received == []


@pytest.mark.node
def test_no_engine_on_an_agent_without_docker_is_not_a_warning(tmp_path: Path) -> None:
    if os.path.exists("/var/run/docker.sock"):
        pytest.skip("this machine has an engine at the default socket")
    with AzureStub() as stub:
        run = run_task(_env(stub, HOME=str(tmp_path)))
    _check_fault(run, stub, fail=False, warned=False)
    assert run.plain_lines == ["container-mapping: no Docker engine on this agent, nothing to map"]


@pytest.mark.node
@pytest.mark.parametrize("fail", [False, True], ids=["warn", "failOnError"])
def test_engine_socket_that_hangs(fail: bool) -> None:
    with HangingSocket() as engine, AzureStub() as stub:
        run = run_task(_env(stub, fail=fail, DOCKER_HOST=engine.url))
    _check_fault(run, stub, fail=fail)
    assert (
        "no answer" in (run.errors + run.warnings)[0] or "budget" in (run.errors + run.warnings)[0]
    )


@pytest.mark.node
def test_engine_answering_500() -> None:
    with EngineStub(events_status=500, events_body=b'{"message":"daemon exploded"}') as engine:
        with AzureStub() as stub:
            run = run_task(_env(stub, DOCKER_HOST=engine.url))
    _check_fault(run, stub, fail=False)
    assert "HTTP 500" in run.warnings[0] and "daemon exploded" in run.warnings[0]


@pytest.mark.node
def test_malformed_event_data() -> None:
    now = time.time_ns()
    good = {
        "Type": "image",
        "Action": "tag",
        "Actor": {"ID": "sha256:" + "a" * 64, "Attributes": {"name": "127.0.0.1:5000/app:1"}},
        "timeNano": now,
    }
    body = json.dumps(good).encode() + b'\n{"Type": "image", "Action": "push", "Act'
    with EngineStub(events_body=body) as engine, AzureStub() as stub:
        env = _env(stub, DOCKER_HOST=engine.url, CONTAINERMAPPING_JOBSTART="2000-01-01T00:00:00Z")
        run = run_task(env)
    _check_fault(run, stub, fail=False)
    assert "malformed event data" in run.warnings[0]


# -- the token route and the sink (a real push, so there is something to send) ---------------

TOKEN_FAULTS = {
    "redirect": "redirected (HTTP 302)",
    "401": "refused the job access token (HTTP 401)",
    "500": "answered HTTP 500",
    "hang": "did not answer",
    "not-json": "without an oidcToken",
}


@pytest.mark.docker
@pytest.mark.node
@pytest.mark.parametrize("mode", list(TOKEN_FAULTS))
def test_token_route_fault(job: Job, docker_host: str, mode: str) -> None:
    with AzureStub(Behaviour(token=mode)) as stub:
        run = run_task({**_env(stub, DOCKER_HOST=docker_host), **job.variables})
    _check_fault(run, stub, fail=False)
    assert TOKEN_FAULTS[mode] in run.warnings[0]
    assert "job authorization scope" in run.warnings[0] or mode == "500"
    assert stub.requests_to("/ingest/") == []


SINK_FAULTS = {"500": "HTTP 500", "hang": "no answer", "401": "HTTP 401"}


@pytest.mark.docker
@pytest.mark.node
@pytest.mark.parametrize("mode", list(SINK_FAULTS))
def test_sink_fault(job: Job, docker_host: str, mode: str) -> None:
    with AzureStub(Behaviour(ingest=mode)) as stub:
        run = run_task({**_env(stub, DOCKER_HOST=docker_host), **job.variables})
    _check_fault(run, stub, fail=False)
    assert SINK_FAULTS[mode] in run.warnings[0]
    sent = len(stub.requests_to("/ingest/"))
    if mode == "500":
        assert sent >= 2  # retried within the budget
    else:
        assert sent == 1  # a 401 is not retried; a hanging send takes the whole budget


@pytest.mark.docker
@pytest.mark.node
def test_sink_refusing_connections(job: Job, docker_host: str) -> None:
    with AzureStub() as stub:
        env = {**_env(stub, DOCKER_HOST=docker_host), **job.variables}
        run = run_task({**env, "INPUT_ENDPOINT": closed_port_url()})
    _check_fault(run, stub, fail=False)
    assert "not delivered" in run.warnings[0]


@pytest.mark.docker
@pytest.mark.node
def test_sink_429_with_retry_after_is_retried_then_delivered(job: Job, docker_host: str) -> None:
    with AzureStub(Behaviour(ingest="429", retry_after="1")) as stub:
        run = run_task({**_env(stub, DOCKER_HOST=docker_host), **job.variables})
    _check_fault(run, stub, fail=False, warned=False)
    assert len(stub.requests_to("/ingest/")) == 2
    assert "mapped 1 image: " in run.plain_lines[0]


@pytest.mark.docker
@pytest.mark.node
def test_sink_429_beyond_the_budget(job: Job, docker_host: str) -> None:
    behaviour = Behaviour(ingest="429", retry_after="60", ingest_429_times=100)
    with AzureStub(behaviour) as stub:
        run = run_task({**_env(stub, DOCKER_HOST=docker_host), **job.variables})
    _check_fault(run, stub, fail=False)
    assert "HTTP 429" in run.warnings[0]
    assert len(stub.requests_to("/ingest/")) == 1  # a Retry-After past the budget is not waited for


@pytest.mark.docker
@pytest.mark.node
@pytest.mark.parametrize("fail", [False, True], ids=["warn", "failOnError"])
def test_fail_on_error_for_token_and_sink_faults(job: Job, docker_host: str, fail: bool) -> None:
    for behaviour in (Behaviour(token="401"), Behaviour(ingest="500")):
        with AzureStub(behaviour) as stub:
            run = run_task({**_env(stub, fail=fail, DOCKER_HOST=docker_host), **job.variables})
        _check_fault(run, stub, fail=fail)


@pytest.mark.docker
@pytest.mark.node
def test_unwritable_temp_directory(job: Job, docker_host: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    nowhere = str(blocker / "temp")  # even root cannot create anything under a regular file
    with AzureStub() as stub:
        env = {**_env(stub, DOCKER_HOST=docker_host), **job.variables}
        run = run_task({**env, "AGENT_TEMPDIRECTORY": nowhere, "TMPDIR": nowhere, "TEMP": nowhere})
    _check_fault(run, stub, fail=False, warned=False)
    (ingest,) = stub.requests_to("/ingest/")
    assert f"ID={job.reference}" in ingest.json()["dockerEvents"]


# -- the shim itself ----------------------------------------------------------------------


def _copy_shim(tmp_path: Path, package: Callable[[Path], None]) -> Path:
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    shutil.copy(SHIM, task_dir / "index.js")
    package(task_dir / "python" / "container_mapping")
    return task_dir / "index.js"


def _crashing_package(target: Path) -> None:
    target.mkdir(parents=True)
    (target / "__init__.py").write_text("")
    (target / "task.py").write_text("raise RuntimeError('vendored package is broken')\n")


@pytest.mark.node
@pytest.mark.parametrize("fail", [False, True], ids=["warn", "failOnError"])
def test_no_python(tmp_path: Path, fail: bool) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    with AzureStub() as stub:
        env = _env(stub, fail=fail, PATH=str(empty))
        run = run_task(env)
        pre = run_task(env, "pre-job")
    _check_fault(run, stub, fail=fail)
    assert "no Python 3.9 or later found" in (run.errors + run.warnings)[0]
    assert pre.code == 0 and pre.warnings == [] and pre.errors == []  # post-job reports it, once
    assert "CONTAINERMAPPING_JOBSTART" in pre.variables()


@pytest.mark.node
@pytest.mark.parametrize("fail", [False, True], ids=["warn", "failOnError"])
def test_python_crash(tmp_path: Path, fail: bool) -> None:
    shim = _copy_shim(tmp_path, _crashing_package)
    with AzureStub() as stub:
        run = run_task(_env(stub, fail=fail), shim=shim)
    _check_fault(run, stub, fail=fail)
    message = (run.errors + run.warnings)[0]
    assert "exited with code 1" in message and "vendored package is broken" in message


@pytest.mark.node
def test_python_older_than_3_9_is_passed_over(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = bin_dir / "python3"
    old.write_text("#!/bin/sh\nexit 87\n")  # what the bootstrap answers on an old Python
    old.chmod(0o755)
    real = shutil.which("python3")
    assert real
    (bin_dir / "python").symlink_to(real)
    with AzureStub() as stub:
        run = run_task(_env(stub, PATH=str(bin_dir)), "pre-job")
    assert run.code == 0 and run.warnings == [], run
    assert "CONTAINERMAPPING_JOBSTART" in run.variables()  # the bootstrap ran on the other one


@pytest.mark.node
def test_vendored_copy_is_preferred(tmp_path: Path) -> None:
    def vendored(target: Path) -> None:
        shutil.copytree(ROOT / "container_mapping", target)

    shim = _copy_shim(tmp_path, vendored)
    with AzureStub() as stub:
        run = run_task(_env(stub, DOCKER_HOST=f"unix://{tmp_path}/none.sock"), shim=shim)
    _check_fault(run, stub, fail=False)
    assert "no Docker engine reachable" in run.warnings[0]


@pytest.mark.node
def test_a_step_killed_at_the_budget(tmp_path: Path) -> None:
    def sleeper(target: Path) -> None:
        target.mkdir(parents=True)
        (target / "__init__.py").write_text("")
        (target / "task.py").write_text("import time\n\ndef main(argv):\n    time.sleep(600)\n")

    shim = _copy_shim(tmp_path, sleeper)
    with AzureStub() as stub:
        run = run_task(_env(stub), shim=shim)
    _check_fault(run, stub, fail=False)
    assert "time budget" in run.warnings[0]


@pytest.mark.node
def test_turned_off_by_the_opt_out_variable(tmp_path: Path) -> None:
    with AzureStub() as stub:
        run = run_task(
            _env(stub, CONTAINERMAPPING_DISABLED="true", DOCKER_HOST=f"unix://{tmp_path}/x")
        )
    assert run.code == 0 and run.warnings == [] and run.commands == []
    assert run.plain_lines == [
        "container-mapping: turned off by the variable ContainerMapping.Disabled"
    ]

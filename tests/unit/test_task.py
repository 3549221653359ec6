"""The task's Python entry: inputs, window, deadline, and the one-line-per-fault rule."""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from container_mapping import task
from container_mapping.agent import AgentLog
from container_mapping.errors import ConfigError, EngineUnavailable
from container_mapping.model import CollectionWindow, ImageRecord, MappingReport, PipelineContext
from container_mapping.reference import ImageReference
from tests.e2e.shim import Run

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=timezone.utc)


def _run(environ: dict[str, str]) -> tuple[int, Run]:
    stream = io.StringIO()
    started = time.monotonic()
    code = task.run(environ, AgentLog(stream))
    return code, Run(code, stream.getvalue(), "", time.monotonic() - started)


def test_inputs_defaults() -> None:
    assert task.TaskInputs.from_environment({}) == task.TaskInputs()
    assert task.TaskInputs().endpoint.startswith("https://dfdinfra-afdendpoint-prod")


def test_inputs_from_environment() -> None:
    inputs = task.TaskInputs.from_environment(
        {
            "INPUT_COMMAND": "post-job",
            "INPUT_ENDPOINT": "http://mapping.internal:8080/v1/reports",
            "INPUT_PROTOCOL": "mapping-service",
            "INPUT_TIMEOUTSECONDS": "12.5",
            "INPUT_FAILONERROR": "True",
        }
    )
    assert inputs == task.TaskInputs(
        "post-job", "http://mapping.internal:8080/v1/reports", "mapping-service", 12.5, True
    )


def test_pre_job_judges_only_its_own_command() -> None:
    """A bad post-job input must not fail the job at its first step (with failOnError)."""
    inputs = task.TaskInputs.from_environment(
        {"INPUT_COMMAND": "pre-job", "INPUT_TIMEOUTSECONDS": "abc", "INPUT_ENDPOINT": "x"}
    )
    assert (inputs.command, inputs.notes) == ("pre-job", ())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("COMMAND", "during-job", "use pre-job or post-job"),
        ("PROTOCOL", "carrier-pigeon", "use defender or mapping-service"),
        ("ENDPOINT", "ftp://mapping.internal/x", "not an https:// or http:// URL"),
        ("ENDPOINT", "https://mapping.internal:http/x?key=hunter2", "not a valid URL"),
        ("ENDPOINT", "https://[::1/x?key=hunter2", "not a valid URL"),
        ("ENDPOINT", "https://user:hunter2@mapping.internal/x", "user name or password"),
    ],
)
def test_bad_inputs(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        task.TaskInputs.from_environment({f"INPUT_{name}": value})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("12.5", 12.5),
        ("3600", 3600.0),
        ("1", 1.0),
        ("0", None),
        ("3601", None),
        ("abc", None),
        ("1e9", None),
        ("1_0", None),
        ("-1", None),
        ("+5", None),
        (" 5", None),
        ("5.", None),
        (".5", None),
        ("٣٠", None),  # Arabic-Indic digits: float() reads them, Node does not
        ("inf", None),
        ("nan", None),
    ],
)
def test_one_grammar_for_the_timeout(text: str, seconds: float | None) -> None:
    assert task.parse_timeout(text) == seconds


def test_the_shim_uses_the_same_timeout_grammar() -> None:
    shim = (Path(__file__).parents[2] / "task" / "index.js").read_text()
    assert "const TIMEOUT_PATTERN = /^[0-9]{1,4}(\\.[0-9]{1,3})?$/;" in shim


def test_window_from_pre_job_variable() -> None:
    window, note = task.collection_window(
        {"CONTAINERMAPPING_JOBSTART": "2026-11-27T09:50:00Z"}, NOW
    )
    assert window == CollectionWindow(datetime(2026, 11, 27, 9, 49, 59, tzinfo=timezone.utc), NOW)
    assert note is None


def test_window_never_starts_before_the_run_did() -> None:
    """A step that sets ContainerMapping.JobStart earlier cannot reach other runs' pushes."""
    environ = {
        "CONTAINERMAPPING_JOBSTART": "2026-11-26T11:00:00Z",
        "SYSTEM_PIPELINESTARTTIME": "2026-11-27 09:30:00+00:00",
    }
    window, note = task.collection_window(environ, NOW)
    assert window.since == datetime(2026, 11, 27, 9, 29, 59, tzinfo=timezone.utc)
    assert note is None


def test_window_falls_back_to_pipeline_start_then_one_hour_and_says_so() -> None:
    start = {"SYSTEM_PIPELINESTARTTIME": "2026-11-27 08:00:00+00:00"}
    window, note = task.collection_window(start, NOW)
    assert window.since == datetime(2026, 11, 27, 7, 59, 59, tzinfo=timezone.utc)
    assert note is not None and "since the pipeline run started" in note
    window, note = task.collection_window({}, NOW)
    assert window.since == NOW - task.FALLBACK_WINDOW - task.CLOCK_SLACK
    assert note is not None and "last hour" in note
    eastern = {"SYSTEM_PIPELINESTARTTIME": "2026-11-27 04:30:00-05:00"}  # as the agent sets it
    assert task.collection_window(eastern, NOW)[0].since == datetime(
        2026, 11, 27, 9, 29, 59, tzinfo=timezone.utc
    )
    garbage = {"CONTAINERMAPPING_JOBSTART": "yesterday-ish", **start}
    window, note = task.collection_window(garbage, NOW)
    assert window.since == datetime(2026, 11, 27, 7, 59, 59, tzinfo=timezone.utc)
    assert note is not None


@pytest.mark.parametrize("since", ["2026-11-25T10:00:00Z", "2026-11-27T11:00:00Z"])
def test_window_ignores_starts_too_old_or_in_the_future(since: str) -> None:
    window, note = task.collection_window({"CONTAINERMAPPING_JOBSTART": since}, NOW)
    assert window.since == NOW - task.FALLBACK_WINDOW - task.CLOCK_SLACK
    assert note is not None


def test_deadline_from_the_shim_is_kept_within_the_budget() -> None:
    now = time.monotonic()
    from_shim = task.deadline_from({"CONTAINER_MAPPING_DEADLINE": str(time.time() + 5)}, 30)
    assert now + 4 < from_shim < now + 6
    capped = task.deadline_from({"CONTAINER_MAPPING_DEADLINE": str(time.time() + 500)}, 30)
    assert capped < now + 31
    assert task.deadline_from({}, 30) > now + 29


def test_pre_job_sets_the_start_read_only() -> None:
    code, run = _run({"INPUT_COMMAND": "pre-job"})
    assert code == 0 and run.plain_lines == [] and run.warnings == []
    (command,) = [c for c in run.commands if c.name == "task.setvariable"]
    assert command.properties == {"variable": "ContainerMapping.JobStart", "isreadonly": "true"}
    assert datetime.fromisoformat(command.message.replace("Z", "+00:00"))


@pytest.mark.parametrize("fail", [False, True])
def test_a_fault_is_one_line(tmp_path: Path, fail: bool) -> None:
    environ = {
        "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock",
        "INPUT_FAILONERROR": str(fail).lower(),
    }
    code, run = _run(environ)
    if fail:
        assert (
            code == task.EXIT_FAILED and len(run.errors) == 1 and run.failed and run.warnings == []
        )
    else:
        assert code == 0 and len(run.warnings) == 1 and run.errors == [] and not run.failed
    assert "no Docker engine reachable" in (run.errors + run.warnings)[0]


def test_a_bad_timeout_is_said_once_and_the_default_used(tmp_path: Path) -> None:
    environ = {"INPUT_TIMEOUTSECONDS": "1e9", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    code, run = _run(environ)
    assert code == 0
    assert run.warnings[0] == (
        "container-mapping: input timeoutSeconds='1e9' is not a number of seconds from 1 to "
        "3600 (like 30 or 12.5); used 30"
    )


@pytest.mark.parametrize("endpoint", ["https://x:http/", "https://[::1/", "https://u:p@x/"])
def test_a_bad_endpoint_is_one_clear_warning_not_an_unexpected_error(endpoint: str) -> None:
    code, run = _run({"INPUT_ENDPOINT": endpoint})
    assert code == 0 and len(run.warnings) == 1
    assert "input endpoint" in run.warnings[0] and "unexpected" not in run.warnings[0]


def test_the_protocol_names_are_one_list() -> None:
    from container_mapping.sinks import PROTOCOLS
    from container_mapping.sinks.interface import SinkProtocol

    assert tuple(p.value for p in SinkProtocol) == PROTOCOLS


def test_unexpected_exception_is_one_warning_with_a_debug_traceback() -> None:
    class Broken(dict):  # type: ignore[type-arg]
        def get(self, *args: object) -> str:
            raise KeyError("boom")

    code, run = _run(Broken())
    assert code == 0
    assert len(run.warnings) == 1 and "unexpected KeyError" in run.warnings[0]
    assert "boom" not in run.warnings[0]  # an exception's text may carry a value: debug only
    assert any(c.name == "task.debug" and "Traceback" in c.message for c in run.commands)


def _report(count: int) -> MappingReport:
    digest = "sha256:" + "a" * 64
    records = tuple(
        ImageRecord(ImageReference.parse(f"r.example/app:{i}@{digest}"), None, True)
        for i in range(count)
    )
    return MappingReport(
        CollectionWindow(NOW - timedelta(minutes=5), NOW), PipelineContext(), records
    )


def test_summary() -> None:
    one = task.summary(_report(1), "https://x.example/ingest")
    assert one.startswith("container-mapping: mapped 1 image: r.example/app:0@sha256:aaaa")
    many = task.summary(_report(7), "https://x.example/ingest")
    assert "mapped 7 images: " in many and "r.example/app:4@" in many and "and 2 more" in many
    assert "r.example/app:5@" not in many


def test_post_job_leaves_the_package_logger_as_it_found_it(tmp_path: Path) -> None:
    import logging

    logger = logging.getLogger("container_mapping")
    before = (list(logger.handlers), logger.propagate)
    _run({"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"})
    assert (list(logger.handlers), logger.propagate) == before


def test_no_engine_here_is_not_a_fault_only_where_nothing_was_configured() -> None:
    missing = EngineUnavailable("no engine")
    missing.__cause__ = FileNotFoundError(2, "No such file or directory")
    hanging = EngineUnavailable("no answer")
    hanging.__cause__ = TimeoutError()
    assert (
        task.no_engine_here(missing, {}, "linux")
        == "no Docker engine on this agent, nothing to map"
    )
    assert task.no_engine_here(missing, {"DOCKER_HOST": "unix:///x"}, "linux") is None
    assert task.no_engine_here(hanging, {}, "linux") is None
    assert "named pipe" in str(task.no_engine_here(hanging, {}, "win32"))
    assert task.no_engine_here(hanging, {"DOCKER_CONTEXT": "remote"}, "win32") is None


def test_the_proxy_password_is_masked_before_anything_else(tmp_path: Path) -> None:
    environ = {
        "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
        "AGENT_PROXYURL": "http://proxy.corp:8080",
        "AGENT_PROXYUSERNAME": "svc",
        "SECRET_AGENT_PROXYPASSWORD": "proxy-pass-7781",
    }
    code, run = _run(environ)
    assert code == 0
    assert run.lines[0] == "##vso[task.setsecret]proxy-pass-7781"
    assert all("proxy-pass-7781" not in line for line in run.lines[1:])

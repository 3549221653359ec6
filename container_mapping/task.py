"""The pipeline task's Python side: pre-job and post-job, run by `task/index.js`.

pre-job records the job's start as the read-only variable `ContainerMapping.JobStart` (post-job
reads it back as `CONTAINERMAPPING_JOBSTART`): read-only, so no later step can move it.

post-job collects what the job pushed since then and sends it. Its window never starts before
`System.PipelineStartTime`, a predefined variable no step can set: a step that sets
`ContainerMapping.JobStart` where pre-job did not (or an earlier time) cannot reach back into
other runs' pushes. Without a usable job start the window starts at the run's start, and post-job
says so once; with neither, one hour back (`FALLBACK_WINDOW`). The job's OIDC token is asked for
only once a push is seen, and then in parallel with the rest of the capture.

Only this job's pushed images leave the job: records whose labels name another run, and images
built but not pushed (on a shared host they may be a neighbour's), go to the debug log by name.

The step never breaks a build: whatever happens ends in at most one warning and exit 0, unless
the `failOnError` input asks for one error, a failed task and exit 3. Exit codes: 0 done (or a
fault reported as a warning), 3 a fault reported as an error (failOnError); anything else is a
crash the shim reports. Output is quiet: one summary line, or one informational line when
nothing was pushed, or when the agent has no Docker engine at all (no DOCKER_HOST or context,
nothing at the default socket: a job without Docker is not a fault). Every secret (the job's
access token, the proxy password, the OIDC token) is masked (`task.setsecret`) before any other
line is printed, and `AgentLog` scrubs them from every line besides.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from container_mapping.agent import AgentLog
from container_mapping.errors import ConfigError, EngineUnavailable, Error
from container_mapping.sinks import DEFENDER_ENDPOINT, PROTOCOLS

if TYPE_CHECKING:
    from container_mapping.azdo.oidc import BackgroundToken
    from container_mapping.http import HttpClient
    from container_mapping.model import CollectionWindow, MappingReport, PipelineContext
    from container_mapping.sinks.interface import Sink

DEFAULT_TIMEOUT = 30.0
START_VARIABLE = "ContainerMapping.JobStart"
# collect/files.py reads these back; repeated here so that pre-job imports nothing more
DIRECTORIES_VARIABLE = "ContainerMapping.JobDirectories"
RECORDER_VARIABLE = "ContainerMapping.Recorder"
JOB_DIRECTORY_ENV = ("BUILD_SOURCESDIRECTORY", "AGENT_TEMPDIRECTORY")
SEPARATOR = ";"
PIPELINE_START_VARIABLE = "System.PipelineStartTime"
FALLBACK_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(hours=24)
CLOCK_SLACK = timedelta(seconds=1)  # the engine may run on another clock (a remote DOCKER_HOST)
NO_ENGINE = "no Docker engine on this agent, nothing to map"
CAPTURE_SHARE = 0.6  # of the budget left; the token and the send get the rest
EXIT_OK = 0
EXIT_FAILED = 3
SHOWN_IN_SUMMARY = 5


def _env_name(variable: str) -> str:
    return variable.replace(".", "_").replace(" ", "_").upper()


def parse_timeout(text: str) -> float | None:
    """`timeoutSeconds` by the one grammar the shim shares (`TIMEOUT_PATTERN` in index.js).

    One to four digits, optionally `.` and one to three digits, between 1 and 3600; else `None`.
    No exponents, signs, underscores or spaces inside: what `float()` would take beyond that,
    Node's `Number()` reads otherwise, and the two sides must agree on the budget.
    """
    whole, dot, fraction = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and 1 <= len(whole) <= 4):
        return None
    if dot and not (fraction.isascii() and fraction.isdigit() and 1 <= len(fraction) <= 3):
        return None
    value = float(text)
    return value if 1 <= value <= 3600 else None


def check_endpoint(text: str) -> str:
    """The `endpoint` input as a URL this task can send to, or a `ConfigError` saying why.

    Messages never repeat the value: it may carry a key in its query or user-info.
    """
    import urllib.parse

    fix = "give the endpoint as https://host[:port]/path"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError(f"input endpoint is not a valid URL (bad host or port); {fix}") from None
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"input endpoint is not an https:// or http:// URL; {fix}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "input endpoint carries a user name or password; remove it (the job's token "
            "authenticates the report)"
        )
    if port == 0:
        raise ConfigError(f"input endpoint has port 0; {fix}")
    return text


class TaskInputs(NamedTuple):
    """The task's inputs (a NamedTuple: pre-job must not pay for importing dataclasses)."""

    command: str = "post-job"
    endpoint: str = DEFENDER_ENDPOINT
    protocol: str = "defender"
    timeout_seconds: float = DEFAULT_TIMEOUT
    fail_on_error: bool = False
    notes: tuple[str, ...] = ()  # inputs that were wrong but had a safe default

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TaskInputs:
        """pre-job reads only `command`; post-job's inputs are post-job's to judge."""

        def get(name: str) -> str:
            return environ.get(f"INPUT_{name.upper()}", "").strip()

        command = get("command") or "post-job"
        if command not in ("pre-job", "post-job"):
            raise ConfigError(f"input command={_shown(command)}: use pre-job or post-job")
        if command == "pre-job":
            return cls(command=command, fail_on_error=fail_on_error(environ))
        protocol = get("protocol") or "defender"
        if protocol not in PROTOCOLS:
            raise ConfigError(f"input protocol={_shown(protocol)}: use defender or mapping-service")
        timeout, notes = DEFAULT_TIMEOUT, ()  # type: tuple[float, tuple[str, ...]]
        text = get("timeoutSeconds")
        if text:
            parsed = parse_timeout(text)
            if parsed is None:
                notes = (
                    f"input timeoutSeconds={_shown(text)} is not a number of seconds from 1 "
                    f"to 3600 (like 30 or 12.5); used {DEFAULT_TIMEOUT:.0f}",
                )
            timeout = parsed or DEFAULT_TIMEOUT
        return cls(
            command=command,
            endpoint=check_endpoint(get("endpoint") or DEFENDER_ENDPOINT),
            protocol=protocol,
            timeout_seconds=timeout,
            fail_on_error=fail_on_error(environ),
            notes=notes,
        )


def _shown(value: str) -> str:
    """An input's value fit for a message: short, and without control characters."""
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


def fail_on_error(environ: Mapping[str, str]) -> bool:
    return environ.get("INPUT_FAILONERROR", "").strip().lower() in ("true", "1", "yes", "on")


def deadline_from(environ: Mapping[str, str], timeout: float) -> float:
    """A `time.monotonic()` deadline: the shim's (wall clock, Unix seconds) when it set one."""
    now = time.monotonic()
    try:
        wall = float(environ.get("CONTAINER_MAPPING_DEADLINE", ""))
    except ValueError:
        return now + timeout
    return now + min(max(wall - time.time(), 0.0), timeout)


def collection_window(
    environ: Mapping[str, str], now: datetime
) -> tuple[CollectionWindow, str | None]:
    """[job start, now], and a note when the job's start could not be used.

    The start is pre-job's record, never earlier than the run's own start (which no step can
    set); see the module docstring for the fallbacks.
    """
    from container_mapping.model import CollectionWindow

    run_start = _recent_time(environ, PIPELINE_START_VARIABLE, now)
    job_start = _recent_time(environ, START_VARIABLE, now)
    note = None
    if job_start is not None:
        since = max(job_start, run_start) if run_start is not None else job_start
    elif run_start is not None:
        since = run_start
        note = (
            f"{START_VARIABLE} (set by the pre-job step) is missing or not a time: "
            "looked for pushes since the pipeline run started"
        )
    else:
        since = now - FALLBACK_WINDOW
        note = (
            f"neither {START_VARIABLE} nor {PIPELINE_START_VARIABLE} is a usable time: "
            "looked for pushes in the last hour"
        )
    return CollectionWindow(min(since - CLOCK_SLACK, now), now), note


def _recent_time(environ: Mapping[str, str], variable: str, now: datetime) -> datetime | None:
    from container_mapping.model import parse_time

    try:
        value = parse_time(environ.get(_env_name(variable), ""))
    except Error:
        return None
    return value if now - MAX_WINDOW <= value <= now + CLOCK_SLACK else None


def pre_job(log: AgentLog, now: datetime, environ: Mapping[str, str] = os.environ) -> int:
    # Not model.format_time: pre-job imports nothing it can do without (RFC 3339, UTC, `Z`).
    log.set_variable(
        START_VARIABLE,
        now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        readonly=True,
    )
    # Where post-job may look for build metadata files (collect/files.py), as the agent set
    # it now: read-only, so no later step can point post-job elsewhere.
    directories = SEPARATOR.join(d for name in JOB_DIRECTORY_ENV if (d := environ.get(name, "")))
    if directories:
        log.set_variable(DIRECTORIES_VARIABLE, directories, readonly=True)
    from container_mapping.recorder import start

    recording = start(environ, now.timestamp())
    if recording:
        log.set_variable(RECORDER_VARIABLE, recording, readonly=True)
    return EXIT_OK


def recording_path(environ: Mapping[str, str]) -> str | None:
    """The recorder's file pre-job named, if it is where pre-job puts it (the job's temp)."""
    from container_mapping.recorder import FILE_NAME

    path = environ.get(_env_name(RECORDER_VARIABLE), "")
    directories = environ.get(_env_name(DIRECTORIES_VARIABLE), "").split(SEPARATOR)
    if not path or os.path.basename(path) != FILE_NAME:
        return None
    return path if os.path.dirname(path) in directories else None


class Job(NamedTuple):
    """What post-job reads of its environment, once, at the entry point."""

    inputs: TaskInputs
    context: PipelineContext
    access_token: str | None
    environ: Mapping[str, str]  # for the engine's address, registry credentials, proxy and TLS

    @classmethod
    def from_environment(cls, inputs: TaskInputs, environ: Mapping[str, str]) -> Job:
        from container_mapping.azdo.oidc import access_token
        from container_mapping.context import from_environment

        return cls(inputs, from_environment(environ), access_token(environ), environ)


def post_job(job: Job, log: AgentLog, deadline: float) -> int:
    from container_mapping.capture import all_collectors, capture, registry_factory

    log.set_secret(job.access_token or "")
    for secret in _setting_secrets(job.environ):
        log.set_secret(secret)
    for input_note in job.inputs.notes:
        log.warning(f"container-mapping: {input_note}")
    window, note = collection_window(job.environ, datetime.now(timezone.utc))
    token = _background_token(job, log, deadline)
    registry = registry_factory(job.environ)
    report = capture(
        window,
        job.context,
        collectors=all_collectors(
            job.environ,
            registry,
            host_log=note is None,
            recording=recording_path(job.environ),
        ),
        registry=registry,
        deadline=_share(deadline, CAPTURE_SHARE),
        on_push=token.start,
    )
    if not report.pushed:
        log.info(f"container-mapping: no image was pushed in this job{_since(report)}")
    else:
        sink = make_sink(job.inputs, token.http, token)
        delivery = sink.send(report.for_sink(), deadline)  # masks the OIDC token first
        log.info(summary(report, delivery.endpoint, _left_out(job.inputs, report)))
    _debug_left_out(log, report)
    if note:  # last: a job without an engine needs no word on its window
        log.info(f"container-mapping: {note}")
    return _warnings(log, report.warnings)


def _nothing_here(inputs: TaskInputs, environ: Mapping[str, str], log: AgentLog) -> int:
    """Post-job where no collector could find a push: what `post_job` would say there."""
    from container_mapping.azdo.oidc import access_token

    log.set_secret(access_token(environ) or "")
    for secret in _setting_secrets(environ):
        log.set_secret(secret)
    for input_note in inputs.notes:
        log.warning(f"container-mapping: {input_note}")
    log.info(f"container-mapping: {NO_ENGINE}")
    return EXIT_OK


def _setting_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The proxy's and client certificate's secrets, read only where such settings exist.

    Most agents have neither: they do not pay for importing the proxy and TLS modules.
    """
    if not any("PROXY" in name.upper() or "CLIENTCERT" in name.upper() for name in environ):
        return ()
    from container_mapping.proxy import secrets_to_mask

    return secrets_to_mask(environ)


def _background_token(job: Job, log: AgentLog, deadline: float) -> BackgroundToken:
    """The job's OIDC token, asked for in a thread once capture sees a push."""
    from container_mapping.azdo.oidc import BackgroundToken

    return BackgroundToken(
        lambda: _http_client(job.environ), job.context, job.access_token, log.set_secret, deadline
    )


def _http_client(environ: Mapping[str, str]) -> HttpClient:
    from container_mapping.http import HttpClient

    return HttpClient(environ=environ)


def make_sink(inputs: TaskInputs, http: HttpClient, token: BackgroundToken) -> Sink:
    from container_mapping.sinks.defender import DefenderSink
    from container_mapping.sinks.interface import SinkProtocol
    from container_mapping.sinks.mapping_service import MappingServiceSink

    protocol = SinkProtocol(inputs.protocol)
    if protocol is SinkProtocol.DEFENDER:
        return DefenderSink(inputs.endpoint, http, token)
    if protocol is SinkProtocol.MAPPING_SERVICE:
        return MappingServiceSink(inputs.endpoint, http, token)
    _assert_never(protocol)


def _assert_never(value: NoReturn) -> NoReturn:
    raise AssertionError(f"unhandled choice {value!r}")


def _debug_left_out(log: AgentLog, report: MappingReport) -> None:
    """Name, in the debug log only, what stays in the job; never a label (it may hold a secret)."""
    for record in report.skipped:
        log.debug(f"container-mapping: left out {record.reference}: its labels name another run")
    for record in report.images:
        if not record.pushed:
            log.debug(f"container-mapping: left out {record.reference}: built, not pushed")


def summary(report: MappingReport, endpoint: str, left_out: int = 0) -> str:
    names = [str(r.reference) for r in report.pushed]
    shown = ", ".join(names[:SHOWN_IN_SUMMARY])
    more = f" and {len(names) - SHOWN_IN_SUMMARY} more" if len(names) > SHOWN_IN_SUMMARY else ""
    noun = "image" if len(names) == 1 else "images"
    line = f"container-mapping: mapped {len(names)} {noun}: {shown}{more} (sent to {endpoint})"
    if left_out:
        line += (
            f"; {left_out} of them not sent: another job used the engine at the same time and "
            "nothing tells whose they are (attribution ambiguous)"
        )
    return line


def _left_out(inputs: TaskInputs, report: MappingReport) -> int:
    """How many records the Defender body leaves out (`ingest.body`); the service takes all."""
    return len(report.ambiguous) if inputs.protocol == "defender" else 0


def _since(report: MappingReport) -> str:
    from container_mapping.model import format_time

    return f" (since {format_time(report.window.since)})"


def _share(deadline: float, share: float) -> float:
    now = time.monotonic()
    return now + max(deadline - now, 0.0) * share


def _warnings(log: AgentLog, messages: Sequence[str]) -> int:
    """What capture noticed, as one warning: the first message, the rest in the debug log."""
    if not messages:
        return EXIT_OK
    for message in messages:
        log.debug(f"container-mapping: {message}")
    more = len(messages) - 1
    extra = f" (and {more} more in the debug log)" if more else ""
    log.warning(f"container-mapping: {messages[0]}{extra}")
    return EXIT_OK


def report_fault(log: AgentLog, message: str, fail: bool) -> int:
    """The one line a fault gets: a warning, or with failOnError an error and a failed task."""
    if fail:
        log.error(message)
        log.fail("container-mapping failed (failOnError is true)")
        return EXIT_FAILED
    log.warning(message)
    return EXIT_OK


def no_engine_here(
    err: EngineUnavailable, environ: Mapping[str, str], platform: str = sys.platform
) -> str | None:
    """Why there is nothing to map when no engine is configured, or `None` for a real fault.

    Not configured (no DOCKER_HOST, no context) and nothing at the default socket: a job
    without Docker. On Windows the default is the engine's named pipe, which this tool does not
    speak yet: saying so on every Windows job as a warning would be noise.
    """
    if environ.get("DOCKER_HOST") or environ.get("DOCKER_CONTEXT"):
        return None
    if platform == "win32":
        return "the Docker engine's named pipe is not supported yet, nothing mapped on Windows"
    if isinstance(err.__cause__, (FileNotFoundError, ConnectionRefusedError)):
        return NO_ENGINE
    return None


def run(environ: Mapping[str, str], log: AgentLog) -> int:
    """One run, never raising: every fault becomes exactly one line (see `report_fault`)."""
    fail = False
    try:
        fail = fail_on_error(environ)
        inputs = TaskInputs.from_environment(environ)
        if inputs.command == "pre-job":
            return pre_job(log, datetime.now(timezone.utc), environ)
        from container_mapping.collect.sources import nothing_to_collect

        if not fail and nothing_to_collect(environ):
            return _nothing_here(inputs, environ, log)
        job = Job.from_environment(inputs, environ)
        return post_job(job, log, deadline_from(environ, inputs.timeout_seconds))
    except EngineUnavailable as err:
        why = no_engine_here(err, environ)
        if why and not fail:
            log.info(f"container-mapping: {why}")
            return EXIT_OK
        return report_fault(log, f"container-mapping: {err}", fail)
    except Error as err:
        return report_fault(log, f"container-mapping: {err}", fail)
    except Exception as err:  # a bug: still one line, with the traceback in the debug log
        import traceback

        log.debug("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        return report_fault(
            log,
            f"container-mapping stopped on an unexpected {type(err).__name__} "
            "(set System.Debug to true for the traceback, and please report it)",
            fail,
        )


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # everything arrives in the environment, as the agent passes it
    return run(os.environ, AgentLog(sys.stdout))


if __name__ == "__main__":
    sys.exit(main())

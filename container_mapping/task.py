"""The pipeline task's Python side: pre-job and post-job, run by `task/index.js`.

pre-job records the job's start as the variable `ContainerMapping.JobStart` (post-job reads it
back as `CONTAINERMAPPING_JOBSTART`), and the Python that ran it as `ContainerMapping.Python`,
so post-job's shim starts that interpreter directly instead of searching PATH again.

post-job collects what the job pushed since then, asks for the job's OIDC token only if there
is something to send, and sends it. Without pre-job's variable, the window starts at
`System.PipelineStartTime` (at most 24 hours back), else one hour back: `FALLBACK_WINDOW`.

The step never breaks a build: whatever happens ends in at most one warning and exit 0, unless
the `failOnError` input asks for one error, a failed task and exit 3. Exit codes: 0 done (or a
fault reported as a warning), 3 a fault reported as an error (failOnError); anything else is a
crash the shim reports. Output is quiet: one summary line, or one informational line when
nothing was pushed, or when the agent has no Docker engine at all (no DOCKER_HOST or context,
nothing at the default socket: a job without Docker is not a fault). Tokens are masked
(`task.setsecret`) before any other line is printed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from container_mapping.agent import AgentLog
from container_mapping.errors import ConfigError, EngineUnavailable, Error

if TYPE_CHECKING:
    from container_mapping.http import HttpClient
    from container_mapping.model import CollectionWindow, MappingReport, PipelineContext
    from container_mapping.sinks.interface import Sink, SinkProtocol, TokenSource

DEFENDER_ENDPOINT = (
    "https://dfdinfra-afdendpoint-prod-d5fqbucbg7fue0cf.z01.azurefd.net"
    "/azuredevops/v1/container-mappings"
)
DEFAULT_TIMEOUT = 30.0
PROTOCOLS = ("defender", "mapping-service")  # the values of sinks.interface.SinkProtocol
START_VARIABLE = "ContainerMapping.JobStart"
PYTHON_VARIABLE = "ContainerMapping.Python"
FALLBACK_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(hours=24)
CLOCK_SLACK = timedelta(seconds=1)  # the engine may run on another clock (a remote DOCKER_HOST)
CAPTURE_SHARE = 0.6  # of the budget left; the token and the send get the rest
EXIT_OK = 0
EXIT_FAILED = 3
SHOWN_IN_SUMMARY = 5


def _env_name(variable: str) -> str:
    return variable.replace(".", "_").replace(" ", "_").upper()


class TaskInputs(NamedTuple):
    """The task's inputs (a NamedTuple: pre-job must not pay for importing dataclasses)."""

    command: str = "post-job"
    endpoint: str = DEFENDER_ENDPOINT
    protocol: str = "defender"
    timeout_seconds: float = DEFAULT_TIMEOUT
    fail_on_error: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TaskInputs:
        def get(name: str) -> str:
            return environ.get(f"INPUT_{name.upper()}", "").strip()

        command = get("command") or "post-job"
        if command not in ("pre-job", "post-job"):
            raise ConfigError(f"input command={command!r}: use pre-job or post-job")
        protocol = get("protocol") or "defender"
        if protocol not in PROTOCOLS:
            raise ConfigError(f"input protocol={protocol!r}: use defender or mapping-service")
        endpoint = get("endpoint") or DEFENDER_ENDPOINT
        if not endpoint.lower().startswith(("https://", "http://")):
            raise ConfigError("input endpoint: give an https:// or http:// URL")
        return cls(
            command=command,
            endpoint=endpoint,
            protocol=protocol,
            timeout_seconds=_timeout(get("timeoutSeconds")),
            fail_on_error=fail_on_error(environ),
        )


def fail_on_error(environ: Mapping[str, str]) -> bool:
    return environ.get("INPUT_FAILONERROR", "").strip().lower() in ("true", "1", "yes", "on")


def _timeout(text: str) -> float:
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"input timeoutSeconds={text!r}: give a number of seconds") from None
    if not 1 <= value <= 3600:
        raise ConfigError(f"input timeoutSeconds={text!r}: between 1 and 3600 seconds")
    return value


def deadline_from(environ: Mapping[str, str], timeout: float) -> float:
    """A `time.monotonic()` deadline: the shim's (wall clock, Unix seconds) when it set one."""
    now = time.monotonic()
    try:
        wall = float(environ.get("CONTAINER_MAPPING_DEADLINE", ""))
    except ValueError:
        return now + timeout
    return now + min(max(wall - time.time(), 0.0), timeout)


def collection_window(environ: Mapping[str, str], now: datetime) -> CollectionWindow:
    """[job start, now]; see the module docstring for the fallbacks."""
    from container_mapping.model import CollectionWindow, parse_time

    since = None
    for variable in (START_VARIABLE, "System.PipelineStartTime"):
        try:
            since = parse_time(environ.get(_env_name(variable), ""))
        except Error:
            continue
        if now - MAX_WINDOW <= since <= now + CLOCK_SLACK:
            break
        since = None
    since = now - FALLBACK_WINDOW if since is None else since - CLOCK_SLACK
    return CollectionWindow(min(since, now), now)


def pre_job(log: AgentLog, now: datetime) -> int:
    # Not model.format_time: pre-job imports nothing it can do without (RFC 3339, UTC, `Z`).
    log.set_variable(
        START_VARIABLE, now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    )
    if sys.executable and os.path.isabs(sys.executable):
        log.set_variable(PYTHON_VARIABLE, sys.executable)
    return EXIT_OK


def post_job(inputs: TaskInputs, environ: Mapping[str, str], log: AgentLog, deadline: float) -> int:
    from container_mapping.capture import capture
    from container_mapping.defender.oidc import access_token

    log.set_secret(access_token(environ) or "")
    now = datetime.now(timezone.utc)
    with _capture_notes() as notes:
        report = capture(
            collection_window(environ, now),
            environ=environ,
            deadline=_share(deadline, CAPTURE_SHARE),
        )
    pushed = report.pushed
    if not pushed:
        log.info(f"container-mapping: no image was pushed in this job{_since(report)}")
        return _notes(log, notes)
    sink = make_sink(inputs, environ, log)
    delivery = sink.send(report, deadline)
    log.info(summary(report, delivery.endpoint))
    return _notes(log, notes)


def make_sink(inputs: TaskInputs, environ: Mapping[str, str], log: AgentLog) -> Sink:
    from container_mapping.defender.oidc import OidcTokenClient, access_token
    from container_mapping.http import HttpClient
    from container_mapping.sinks.interface import SinkProtocol

    try:
        protocol = SinkProtocol(inputs.protocol)
    except ValueError:
        raise ConfigError(
            f"input protocol={inputs.protocol!r}: use defender or mapping-service"
        ) from None
    http = HttpClient(environ=http_environment(environ))
    report_context = _context(environ)

    def token(deadline: float | None) -> str:
        value = OidcTokenClient(http).request(report_context, access_token(environ), deadline)
        log.set_secret(value)
        return value

    return _sink_for(protocol, inputs.endpoint, http, token)


def http_environment(environ: Mapping[str, str]) -> Mapping[str, str]:
    """The agent's proxy (`AGENT_PROXYURL`) as `https_proxy`/`http_proxy`, unless those are set.

    The agent's bypass list (regular expressions) and proxy credentials are not carried over.
    """
    proxy = environ.get("AGENT_PROXYURL", "").strip()
    standard = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")
    if not proxy or any(environ.get(name) for name in standard):
        return environ
    return {**environ, "https_proxy": proxy, "http_proxy": proxy}


def _sink_for(protocol: SinkProtocol, endpoint: str, http: HttpClient, token: TokenSource) -> Sink:
    from container_mapping.sinks.defender import DefenderSink
    from container_mapping.sinks.interface import SinkProtocol
    from container_mapping.sinks.mapping_service import MappingServiceSink

    if protocol is SinkProtocol.DEFENDER:
        return DefenderSink(endpoint, http, token)
    if protocol is SinkProtocol.MAPPING_SERVICE:
        return MappingServiceSink(endpoint, http, token)
    _assert_never(protocol)


def _assert_never(value: NoReturn) -> NoReturn:
    raise AssertionError(f"unhandled choice {value!r}")


def _context(environ: Mapping[str, str]) -> PipelineContext:
    from container_mapping.context import from_environment

    return from_environment(environ)


def summary(report: MappingReport, endpoint: str) -> str:
    names = [str(r.reference) for r in report.pushed]
    shown = ", ".join(names[:SHOWN_IN_SUMMARY])
    more = f" and {len(names) - SHOWN_IN_SUMMARY} more" if len(names) > SHOWN_IN_SUMMARY else ""
    noun = "image" if len(names) == 1 else "images"
    return f"container-mapping: mapped {len(names)} {noun}: {shown}{more} (sent to {endpoint})"


def _since(report: MappingReport) -> str:
    from container_mapping.model import format_time

    return f" (since {format_time(report.window.since)})"


def _share(deadline: float, share: float) -> float:
    now = time.monotonic()
    return now + max(deadline - now, 0.0) * share


@contextlib.contextmanager
def _capture_notes() -> Iterator[list[str]]:
    """Collect what the collectors log as warnings meanwhile, to report once at the end."""
    import logging

    messages: list[str] = []

    class Notes(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("container_mapping")
    handler, propagate = Notes(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _notes(log: AgentLog, messages: list[str]) -> int:
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
        return "no Docker engine on this agent, nothing to map"
    return None


def run(environ: Mapping[str, str], log: AgentLog) -> int:
    """One run, never raising: every fault becomes exactly one line (see `report_fault`)."""
    fail = False
    try:
        fail = fail_on_error(environ)
        inputs = TaskInputs.from_environment(environ)
        now = datetime.now(timezone.utc)
        if inputs.command == "pre-job":
            return pre_job(log, now)
        return post_job(inputs, environ, log, deadline_from(environ, inputs.timeout_seconds))
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
            f"container-mapping stopped on an unexpected {type(err).__name__}: {err} "
            "(set System.Debug to true for the traceback, and please report it)",
            fail,
        )


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # everything arrives in the environment, as the agent passes it
    return run(os.environ, AgentLog(sys.stdout))


if __name__ == "__main__":
    sys.exit(main())

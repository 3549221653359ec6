"""The CLI's contract with a new user: every bad input is one line saying what to do, with its
exit code (2 usage, 1 error, 3 no engine), never a traceback; `-v` tells what happened.

Tests marked `docker` run against the real engine started by `scripts/services.sh`.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from container_mapping.cli import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NO_ENGINE,
    EXIT_OK,
    EXIT_USAGE,
    env_flag,
    main,
)
from container_mapping.collect.docker import DockerCollector
from container_mapping.credentials import DockerCredentials
from container_mapping.engine import DEFAULT_UNIX_SOCKET, Engine, EngineAddress, resolve_address
from container_mapping.errors import ConfigError
from container_mapping.model import CollectionWindow

from ..integration.images import build, push

ROOT = Path(__file__).resolve().parents[2]


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """argparse's own usage errors exit through SystemExit(2); the message is the last line."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    return capsys.readouterr().err.strip().splitlines()[-1]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """DOCKER_HOST at a socket path where nothing listens: the engine is never reached."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path


# --- the window --------------------------------------------------------------------------------


def test_a_bad_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--since", "yesterday"]) == EXIT_USAGE
    assert "error: --since: invalid time 'yesterday': give an RFC 3339 time" in _one_line(capsys)


def test_a_bad_window_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_SINCE", "yesterday")
    assert main(["collect"]) == EXIT_USAGE
    assert "error: $CONTAINER_MAPPING_SINCE: invalid time 'yesterday'" in _one_line(capsys)


def test_a_window_that_ends_before_it_starts_says_what_to_give(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["collect", "--since", "10m", "--until", "20m"]) == EXIT_USAGE
    assert _one_line(capsys).endswith("give an --until later than --since")


@pytest.mark.parametrize("since", ["99999999999h", "999999999d", "3000000d", "9" * 400 + ".5s"])
def test_a_duration_past_the_calendar_is_a_usage_error(
    since: str, no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collect", "--since", since]) == EXIT_USAGE
    line = _one_line(capsys)
    assert "reaches back before the year 1: give a shorter one" in line
    assert len(line) < 200


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_outside_the_calendar_in_utc_is_a_usage_error(
    moment: str, no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collect", "--since", "1m", "--until", moment]) == EXIT_USAGE
    assert "outside the years 1 to 9999" in _one_line(capsys)


# --- the time budget ---------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["0", "-5", "nan", "inf", "soon", ""])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _usage_error(["collect", "--since", "1m", "--timeout", timeout], capsys)
    assert f"argument --timeout: {timeout!r} is not a time budget" in line
    assert "positive number of seconds" in line


def test_a_bad_timeout_from_the_environment_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_TIMEOUT", "soon")
    line = _usage_error(["collect", "--since", "1m"], capsys)
    assert "'soon' is not a time budget" in line and "$CONTAINER_MAPPING_TIMEOUT" in line


@pytest.mark.docker
def test_timeout_zero_is_a_usage_error_not_a_missing_engine(
    docker_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _usage_error(["collect", "--since", "1m", "--timeout", "0"], capsys)
    assert "no Docker engine" not in line
    assert "positive number of seconds" in line


@pytest.mark.docker
def test_a_budget_too_short_for_the_engine_says_so_not_that_there_is_no_engine(
    docker_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collect", "--since", "1m", "--timeout", "1e-9"]) == EXIT_ERROR
    line = _one_line(capsys)
    assert "--timeout ran out before the Docker engine answered; give a longer --timeout" in line
    assert "no Docker engine reachable" not in line


# --- boolean environment defaults --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), (" 1 ", True), ("yes", True), ("On", True),
     ("false", False), ("0", False), ("no", False), ("off", False), ("", False)],
)  # fmt: skip
def test_boolean_environment_defaults(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_VERIFY", value)
    assert env_flag("VERIFY") is expected


@pytest.mark.parametrize("name", ["VERIFY", "JSON"])
def test_a_boolean_environment_default_that_is_neither_is_a_usage_error_naming_it(
    name: str, no_engine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(f"CONTAINER_MAPPING_{name}", "maybe")
    assert main(["collect", "--since", "1m"]) == EXIT_USAGE
    line = _one_line(capsys)
    assert f"CONTAINER_MAPPING_{name}='maybe' is not a boolean: use true or false" in line


def test_the_flag_wins_over_a_bad_boolean_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_VERIFY", "maybe")
    with pytest.raises(ConfigError):
        env_flag("VERIFY")
    # --verify given: the variable is not consulted, so the run reaches the engine (absent here)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/cm-test.sock")
    assert main(["collect", "--since", "1m", "--verify"]) == EXIT_NO_ENGINE


def test_an_empty_environment_default_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_SINCE", "")
    line = _usage_error(["collect"], capsys)
    assert "the following arguments are required: --since" in line


# --- finding the engine ------------------------------------------------------------------------


def test_docker_host_naming_a_plain_file_says_it_is_not_a_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "docker.sock"
    plain.write_text("not a socket")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{plain}")
    assert main(["collect", "--since", "1m"]) == EXIT_NO_ENGINE
    line = _one_line(capsys)
    assert f"{plain} is a file, not a socket" in line
    assert "refused" not in line.lower()


def test_docker_host_naming_a_directory_says_it_is_not_a_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}")
    assert main(["collect", "--since", "1m"]) == EXIT_NO_ENGINE
    assert f"{tmp_path} is a directory, not a socket" in _one_line(capsys)


def test_a_socket_nobody_listens_on_is_still_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))  # bound, never listening: connect is refused
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        assert main(["collect", "--since", "1m"]) == EXIT_NO_ENGINE
        line = _one_line(capsys)
        assert "not a socket" not in line and "refused" in line.lower()
    finally:
        listener.close()


def test_a_socket_this_user_may_not_use_says_so(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("needs root to run the command as another user, and /usr/bin/python3")
    path = tmp_path / "engine.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)
    os.chmod(path, 0o600)  # root's alone, as docker.sock is root:docker 0660
    with listener:
        done = subprocess.run(
            ["/usr/bin/python3", "-m", "container_mapping", "collect", "--since", "1m"],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DOCKER_HOST": f"unix://{path}"},
            user=65534, cwd="/", capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert done.returncode == EXIT_NO_ENGINE, done.stderr
    assert done.stderr == (
        f"container-mapping: the Docker engine's socket {path} (DOCKER_HOST) refuses this user: "
        "run as a member of the socket's group (usually docker), or point DOCKER_HOST at an "
        "engine this user may use\n"
    )


@pytest.mark.parametrize("host", ["tcp://localhost:abc", "tcp://[::1", "tcp://localhost:99999"])
def test_a_malformed_tcp_docker_host_is_a_usage_error(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert main(["collect", "--since", "1m"]) == EXIT_USAGE
    assert _one_line(capsys) == (
        f"container-mapping: error: engine address {host} (DOCKER_HOST) is not "
        "tcp://HOST[:PORT] with a port from 1 to 65535: fix DOCKER_HOST"
    )


# --- a broken Docker config --------------------------------------------------------------------


def test_a_garbage_docker_config_is_named_with_its_json_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"currentContext": ')
    note = (
        f"ignoring the Docker config {config}: it is not valid JSON "
        "(Expecting value: line 1 column 20 (char 19)); fix or remove it"
    )
    assert resolve_address({"DOCKER_CONFIG": str(tmp_path)}) == EngineAddress(
        DEFAULT_UNIX_SOCKET, note=note
    )
    # No engine at the default socket: the one line names the config too.
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    if Path(DEFAULT_UNIX_SOCKET.removeprefix("unix://")).exists():
        pytest.skip("this machine has an engine at the default socket")
    assert main(["collect", "--since", "1m"]) == EXIT_NO_ENGINE
    assert _one_line(capsys).endswith(f"point DOCKER_HOST at it (also {note})")


def test_a_docker_config_that_is_not_an_object_is_named_too(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[]")
    expected = f"ignoring the Docker config {tmp_path / 'config.json'}: it is not a JSON object"
    assert resolve_address({"DOCKER_CONFIG": str(tmp_path)}).note == f"{expected}; fix or remove it"
    credentials = DockerCredentials(tmp_path, {})
    assert credentials.lookup("registry.example") is None
    assert credentials.describe() == f"{tmp_path / 'config.json'}, ignored: it is not a JSON object"


@pytest.mark.docker
def test_the_collector_reports_the_ignored_config_with_its_warnings(docker_host: str) -> None:
    note = "ignoring the Docker config /x/config.json: it is not valid JSON (...); fix or remove it"
    engine = Engine(EngineAddress(docker_host, origin="DOCKER_HOST", note=note))
    now = datetime.now(timezone.utc)
    collection = DockerCollector(engine).collect(CollectionWindow(now - timedelta(seconds=1), now))
    assert collection.warnings[0] == note


def test_the_credentials_lookup_names_a_garbage_config_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "config.json").write_text("{not json")
    credentials = DockerCredentials(tmp_path, {})
    why = (
        "it is not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
    )
    with caplog.at_level(logging.WARNING, logger="container_mapping"):
        assert credentials.lookup("registry.example") is None
        assert credentials.lookup("other.example") is None  # read and said once
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring the Docker config {tmp_path / 'config.json'}: {why}; fix or remove it"
    ]
    # A registry's 401 names it too (post-job shows that, not the log).
    assert credentials.describe() == f"{tmp_path / 'config.json'}, ignored: {why}"


# --- -v ----------------------------------------------------------------------------------------


def test_verbose_tells_where_it_looked_and_how_it_failed(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collect", "-v", "--since", "10m"]) == EXIT_NO_ENGINE
    err = capsys.readouterr().err
    assert "debug: window " in err and "(600s); verify off; budget 60s" in err
    assert f"debug: Docker engine at unix://{no_engine}/nothing.sock (from DOCKER_HOST)" in err
    assert "debug: failed after " in err
    assert err.strip().splitlines()[-1].startswith("container-mapping: no Docker engine")


def test_without_verbose_there_are_no_diagnostics(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collect", "--since", "10m"]) == EXIT_NO_ENGINE
    assert "debug:" not in capsys.readouterr().err


@pytest.mark.docker
def test_verbose_tells_what_was_read_and_how_long_it_took(
    docker_host: str, docker_client: Any, unique_repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = f"{unique_repo}:v1"
    build(docker_client, reference)
    digest = push(docker_client, reference)
    assert main(["-v", "collect", "--since", "1m", "--verify", "--json"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out.startswith("{")
    err = captured.err
    assert f"debug: Docker engine at {docker_host} (from DOCKER_HOST)" in err
    assert "debug: engine GET /version: HTTP 200" in err
    assert "debug: engine GET /events: HTTP 200" in err
    assert "events in the engine's buffer" in err
    assert re.search(rf"debug: registry {re.escape(reference)}: {digest} in [0-9.]+ ms", err)
    assert f"debug: registry check {reference}@{digest}: verified" in err
    assert "debug: captured in " in err


# --- output ------------------------------------------------------------------------------------


@pytest.mark.docker
def test_a_reader_that_went_away_is_not_a_traceback(docker_host: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` having exited: every write to stdout fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "container_mapping", "collect", "--since", "1m", "--json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == EXIT_OK, done.stderr


def test_ctrl_c_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)
    listener.settimeout(30)
    command = [sys.executable, "-m", "container_mapping", "collect", "--since", "1m"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": f"unix://{path}"}
    with (
        listener,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
        ) as process,
    ):
        connection, _ = listener.accept()  # the CLI is now waiting for the engine's answer
        with connection:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED
    assert err == "container-mapping: interrupted\n" and out == ""

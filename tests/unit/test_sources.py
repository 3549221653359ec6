"""`nothing_to_collect`: post-job's shortcut is taken only where no collector could find a push."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from container_mapping.collect.sources import JOB_DIRECTORIES_ENV, nothing_to_collect

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the shortcut is for Unix hosts")


def bare(tmp_path: Path, **environ: str) -> bool:
    """A host with no socket, no podman log and an empty Docker config directory."""
    return nothing_to_collect(
        {"DOCKER_CONFIG": str(tmp_path / "docker"), **environ},
        docker_socket=str(tmp_path / "docker.sock"),
        podman_log=tmp_path / "events.log",
    )


def test_a_host_without_any_source_has_nothing(tmp_path: Path) -> None:
    assert bare(tmp_path)


@pytest.mark.parametrize(
    "variable",
    ["DOCKER_HOST", "DOCKER_CONTEXT", JOB_DIRECTORIES_ENV],
)
def test_a_configured_source_goes_the_whole_way(tmp_path: Path, variable: str) -> None:
    assert not bare(tmp_path, **{variable: "unix:///elsewhere.sock"})


def test_blank_engine_variables_are_not_a_source(tmp_path: Path) -> None:
    assert bare(tmp_path, DOCKER_HOST="  ", DOCKER_CONTEXT="")


def test_a_docker_config_may_name_a_context(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text("{}")
    assert not bare(tmp_path)


def test_a_socket_at_the_default_place_is_asked(tmp_path: Path) -> None:
    (tmp_path / "docker.sock").write_text("")  # even a dangling or broken one: the engine says
    assert not bare(tmp_path)


def test_a_podman_event_log_is_read(tmp_path: Path) -> None:
    (tmp_path / "events.log").write_text("")
    assert not bare(tmp_path)

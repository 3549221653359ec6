"""The engine is found as the docker CLI finds it: DOCKER_HOST, then the context, then default."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from container_mapping.engine import DEFAULT_UNIX_SOCKET, Engine, resolve_address
from container_mapping.errors import ConfigError, EngineUnavailable


def _write_context(config_dir: Path, name: str, host: str, current: bool = True) -> None:
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}})
    )
    if current:
        (config_dir / "config.json").write_text(json.dumps({"currentContext": name}))


def test_docker_host_wins(tmp_path: Path) -> None:
    _write_context(tmp_path, "remote", "tcp://10.0.0.1:2375")
    address = resolve_address({"DOCKER_HOST": "unix:///x.sock", "DOCKER_CONFIG": str(tmp_path)})
    assert (address.url, address.origin) == ("unix:///x.sock", "DOCKER_HOST")


def test_current_context_from_config(tmp_path: Path) -> None:
    _write_context(tmp_path, "ci-engine", "unix:///run/ci-engine.sock")
    address = resolve_address({"DOCKER_CONFIG": str(tmp_path)})
    assert (address.url, address.origin) == ("unix:///run/ci-engine.sock", "context ci-engine")


def test_docker_context_variable_beats_the_config(tmp_path: Path) -> None:
    _write_context(tmp_path, "a", "unix:///a.sock")
    _write_context(tmp_path, "b", "unix:///b.sock", current=False)
    assert (
        resolve_address({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "b"}).url
        == "unix:///b.sock"
    )


def test_default_context_is_the_default_socket(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert resolve_address({"DOCKER_CONFIG": str(tmp_path)}).url == DEFAULT_UNIX_SOCKET


def test_a_missing_context_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="docker context 'gone' not found"):
        resolve_address({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "gone"})


def test_unsupported_scheme_says_what_to_do() -> None:
    engine = Engine.from_environment({"DOCKER_HOST": "ssh://user@builder"})
    with pytest.raises(EngineUnavailable, match="ssh://"):
        engine.version()


@pytest.mark.docker
def test_a_context_reaches_the_real_engine(tmp_path: Path, docker_host: str) -> None:
    _write_context(tmp_path, "local", docker_host)
    engine = Engine.from_environment({"DOCKER_CONFIG": str(tmp_path)})
    assert engine.version()["Version"]

"""Registry credentials from the Docker config: `auths` entries, helpers, `DOCKER_CONFIG`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from container_mapping.credentials import Credentials, DockerCredentials
from container_mapping.registry import RegistryClient
from tests.unit.docker_config import (
    PASSWORD,
    USER,
    basic_config,
    install_helper,
    isolated_environ,
    write_config,
)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return isolated_environ(tmp_path)


def test_credentials_from_auths_entry(environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config("reg.example.com"))
    found = DockerCredentials(directory, environ).lookup("reg.example.com")
    assert found == Credentials(USER, PASSWORD)
    assert PASSWORD not in repr(found)


def test_docker_hub_credentials_use_the_index_key(environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config("https://index.docker.io/v1/"))
    assert DockerCredentials(directory, environ).lookup("docker.io") == Credentials(USER, PASSWORD)


def test_auths_key_with_scheme_and_path_matches_the_host(environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config("https://reg.example.com/v2/"))
    store = DockerCredentials(directory, environ)
    assert store.lookup("reg.example.com") == Credentials(USER, PASSWORD)
    assert store.lookup("other.example.com") is None


def test_identity_token_entry(environ: dict[str, str]) -> None:
    directory = write_config(environ, {"auths": {"r.example.com": {"identitytoken": "idt"}}})
    found = DockerCredentials(directory, environ).lookup("r.example.com")
    assert found == Credentials(identity_token="idt")
    assert found is not None and found.basic() is None


def test_missing_or_broken_config_means_no_credentials(environ: dict[str, str]) -> None:
    directory = Path(environ["HOME"]) / "nowhere"
    assert DockerCredentials(directory, environ).lookup("r.example.com") is None
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{not json")
    assert DockerCredentials(directory, environ).lookup("r.example.com") is None


def test_cred_helper_gets_the_server_on_stdin(environ: dict[str, str]) -> None:
    log = Path(environ["HOME"]) / "helper-input"
    install_helper(
        environ,
        "fake",
        f'cat >> {log}\necho \'{{"ServerURL":"x","Username":"bob","Secret":"hunter2"}}\'\n',
    )
    directory = write_config(environ, {"credHelpers": {"reg.example.com": "fake"}})
    store = DockerCredentials(directory, environ)
    assert store.lookup("reg.example.com") == Credentials("bob", "hunter2")
    assert store.lookup("reg.example.com") == Credentials("bob", "hunter2")
    assert log.read_text() == "reg.example.com"  # asked once, remembered


def test_creds_store_for_docker_hub_and_identity_tokens(environ: dict[str, str]) -> None:
    log = Path(environ["HOME"]) / "helper-input"
    install_helper(
        environ, "store", f'cat > {log}\necho \'{{"Username":"<token>","Secret":"rt"}}\'\n'
    )
    directory = write_config(environ, {"credsStore": "store", "auths": {}})
    found = DockerCredentials(directory, environ).lookup("docker.io")
    assert found == Credentials(identity_token="rt")
    assert log.read_text() == "https://index.docker.io/v1/"


def test_failing_or_missing_helper_falls_back_to_auths(environ: dict[str, str]) -> None:
    install_helper(environ, "broken", "echo 'credentials not found in native keychain'\nexit 1\n")
    config = basic_config("a.example.com") | {
        "credHelpers": {"a.example.com": "broken", "b.example.com": "absent"}
    }
    config["auths"]["b.example.com"] = config["auths"]["a.example.com"]  # type: ignore[index]
    store = DockerCredentials(write_config(environ, config), environ)
    assert store.lookup("a.example.com") == Credentials(USER, PASSWORD)
    assert store.lookup("b.example.com") == Credentials(USER, PASSWORD)


def test_helper_name_with_a_path_is_not_run(environ: dict[str, str]) -> None:
    marker = Path(environ["HOME"]) / "ran"
    install_helper(environ, "x", f"touch {marker}\n")
    directory = write_config(environ, {"credsStore": "../bin/docker-credential-x"})
    assert DockerCredentials(directory, environ).lookup("r.example.com") is None
    assert not marker.exists()


def test_docker_config_env_var_chooses_the_directory(
    environ: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps(basic_config("r.example.com")))
    client = RegistryClient(environ=environ | {"DOCKER_CONFIG": str(elsewhere)})
    assert client.credentials.path == elsewhere / "config.json"
    assert client.credentials.lookup("r.example.com") == Credentials(USER, PASSWORD)

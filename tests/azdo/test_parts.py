"""The parts without a service: targets, versions, the state file, the policy page, usage errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from container_mapping.azdo.onboard.checks import _policy_value
from container_mapping.azdo.onboard.model import Extension, Outcome, Status, version_key
from container_mapping.azdo.onboard.state import load, save
from container_mapping.azdo.onboard.targets import listed, target
from container_mapping.cli import main
from container_mapping.errors import ConfigError

TEMPLATE = "https://dev.azure.com/{org}"


@pytest.mark.parametrize(
    ("text", "name", "url"),
    [
        ("fabrikam", "fabrikam", "https://dev.azure.com/fabrikam"),
        ("https://dev.azure.com/fabrikam/", "fabrikam", "https://dev.azure.com/fabrikam"),
        ("https://fabrikam.visualstudio.com", "fabrikam", "https://fabrikam.visualstudio.com"),
        ("https://tfs.example.com/tfs/DefaultCollection", "DefaultCollection",
         "https://tfs.example.com/tfs/DefaultCollection"),
    ],
)  # fmt: skip
def test_targets_from_names_and_urls(text: str, name: str, url: str) -> None:
    assert target(text, TEMPLATE) == (target(text, TEMPLATE).__class__(name, url))


@pytest.mark.parametrize(
    "text", ["https://user:secret@dev.azure.com/org", "https://dev.azure.com/org?x=1",
             "https://dev.azure.com", "bad name", "-dash"],
)  # fmt: skip
def test_bad_targets_are_config_errors_without_the_secret(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        target(text, TEMPLATE)
    assert "secret" not in str(caught.value)


def test_listed_names_that_are_not_organizations_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = listed(["fabrikam", "../admin", "a b"], TEMPLATE)
    assert [t.url for t in found] == ["https://dev.azure.com/fabrikam"]
    assert caplog.text.count("not an organization name") == 2


def test_versions_compare_numerically() -> None:
    assert version_key("1.10.0") > version_key("1.9.9") > version_key("") == ()
    with pytest.raises(ConfigError, match="not a version"):
        Extension("pub", "ext", "1.0-beta")
    with pytest.raises(ConfigError, match="not a Marketplace name"):
        Extension("pub/../x", "ext", "1.0.0")


def test_state_round_trip_private_and_refuses_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_STATE_DIR", str(tmp_path))
    fresh = load("prod")
    wanted = Extension("pub", "ext", "1.2.3")
    outcome = Outcome("org", "https://dev.azure.com/org", Status.DONE, installed_version="1.2.3")
    path = save(fresh.with_outcome(outcome, wanted))
    again = load("prod")
    assert again.id == fresh.id and again.done_at("org", wanted)
    assert not again.done_at("org", Extension("pub", "ext", "1.2.4"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="unreadable"):
        load("prod")
    with pytest.raises(ConfigError, match="--config-name"):
        load("../etc")


def _page(value: Any) -> dict[str, Any]:
    policy = {"name": "Policy.DisallowOAuthAuthentication", "effectiveValue": value}
    provider = {"policies": {"applicationConnection": [{"policy": policy}]}}
    data = {"ms.vss-admin-web.organization-policies-data-provider": provider}
    return {"fps": {"dataProviders": {"data": data}}}


def test_policy_page_is_read_or_unknown() -> None:
    assert _policy_value(_page(True)) is True
    assert _policy_value(_page(False)) is False
    assert _policy_value(_page("yes")) is None
    assert _policy_value({"fps": {}}) is None
    assert _policy_value(json.loads("[]")) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["onboard"], "give --all"),
        (["onboard", "--future", "org"], "--future needs --all"),
        (["onboard", "sync", "org"], "takes no organizations"),
        (["onboard", "bad name"], "neither an organization name"),
        (["onboard", "org", "--version", "one"], "not a version"),
        (["onboard", "org", "--request-timeout", "0"], "time budget"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("CONTAINER_MAPPING_STATE_DIR", str(tmp_path))
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def exit_code(argv: list[str]) -> int:
    """`main`'s answer, or argparse's exit status for a flag it refused itself."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def test_boolean_flags_take_their_variables(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CONTAINER_MAPPING_FUTURE", "yes")
    assert main(["onboard", "org"]) == 2
    assert "--future needs --all" in capsys.readouterr().err
    monkeypatch.setenv("CONTAINER_MAPPING_FUTURE", "perhaps")
    assert main(["onboard", "org"]) == 2
    assert "CONTAINER_MAPPING_FUTURE='perhaps' is not a boolean" in capsys.readouterr().err


def test_the_parser_loads_nothing_of_the_azure_extra() -> None:
    """`--help`, `collect` and the agent never pay for the SDK: only the handlers import it."""
    import subprocess
    import sys

    probe = (
        "import sys; from container_mapping.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('azure', 'msrest', 'rich', 'requests')))"
    )
    root = str(Path(__file__).parents[2])
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": root}, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"

"""The CLI's contract: bad flags and bad environment defaults are usage errors (exit 2)."""

from __future__ import annotations

import pytest

from container_mapping.cli import EXIT_USAGE, main


def test_a_bad_timeout_from_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_TIMEOUT", "soon")
    with pytest.raises(SystemExit) as exited:
        main(["collect", "--since", "1m"])
    assert exited.value.code == EXIT_USAGE
    assert "invalid float value: 'soon'" in capsys.readouterr().err


def test_a_bad_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--since", "yesterday"]) == EXIT_USAGE
    assert "invalid time 'yesterday'" in capsys.readouterr().err

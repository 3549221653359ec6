"""`onboard`, `onboard sync` and `offboard` through the CLI, the real SDK and the stand-in.

Nothing is patched: the SDK discovers every route from the stand-in, given only the
organization URL, as it would from Azure DevOps Server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from container_mapping.cli import main
from tests.azdo.standin import Org, World

pytestmark = pytest.mark.azdo
KEY = "ContainerMapping.Onboarding"


def run(base: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json", "--org-url", base + "/{org}", "--timeout", "10"]
                + (["--accounts-url", f"{base}/app"] if args[0] == "onboard" else []))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def by_org(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["organization"]: entry for entry in report["organizations"]}


def test_fresh_organization_is_shared_installed_and_claimed(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("fresh", projects=5, repositories=3))
    code, report = run(base, capsys, "onboard", "fresh", "--version", "1.2.0")
    entry = by_org(report)["fresh"]
    assert code == 0, entry
    assert entry["status"] == "done"
    assert entry["actions"] == ["claim", "share", "install"]
    assert (entry["projects"], entry["repositories"]) == (5, 3)  # 3 pages of projects
    assert org.shared and org.installed == {"version": "1.2.0", "flags": "none"}
    assert org.settings[KEY]["id"] == report["configuration"]["id"]
    assert all("api-version=" in accept for method, _, accept in world.log if method != "OPTIONS"
               and "_settings" not in _)  # fmt: skip
    saved = json.loads((state_dir / "onboard" / "default.json").read_text())
    assert saved["organizations"]["fresh"]["status"] == "done"
    assert PAT_NOT_IN(saved)


def PAT_NOT_IN(saved: dict[str, Any]) -> bool:
    from tests.azdo.conftest import PAT

    return PAT not in json.dumps(saved)

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
from tests.azdo.conftest import PAT
from tests.azdo.standin import Org, World

pytestmark = pytest.mark.azdo
KEY = "ContainerMapping.Onboarding"


def run(base: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(
        [*args, "--json", "--org-url", base + "/{org}", "--request-timeout", "10"]
        + (["--accounts-url", f"{base}/app"] if args[0] == "onboard" else [])
    )
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def by_org(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["organization"]: entry for entry in report["organizations"]}


def single(
    base: str, capsys: pytest.CaptureFixture[str], command: str, org: str, *args: str
) -> tuple[int, dict[str, Any]]:
    """Run a command on one organization: the exit code and that organization's outcome."""
    code, report = run(base, capsys, command, org, *args)
    return code, by_org(report)[org]


def check_named(entry: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(c for c in entry["checks"] if c["name"].startswith(prefix))


def test_fresh_organization_is_shared_installed_and_claimed(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("fresh", projects=5, repositories=3))
    code, entry = single(base, capsys, "onboard", "fresh", "--version", "1.2.0")
    assert code == 0, entry
    assert entry["status"] == "done"
    assert entry["actions"] == ["claim", "share", "install"]
    assert (entry["projects"], entry["repositories"]) == (5, 3)  # 3 pages of projects
    assert org.shared and org.installed == {"version": "1.2.0", "flags": "none"}
    saved = json.loads((state_dir / "onboard" / "default.json").read_text())
    assert org.settings[KEY]["id"] == saved["configuration"]["id"]
    api = [(path, accept) for method, path, accept in world.log
           if method != "OPTIONS" and "/_settings/" not in path]  # fmt: skip
    assert api and all("api-version=" in accept for _, accept in api)
    assert saved["organizations"]["fresh"]["status"] == "done"
    assert PAT not in json.dumps(saved)


def writes_to(world: World, org: str) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in world.writes() if f"/{org}/" in p or p.endswith(f"/{org}")]


def test_organization_given_by_url_finds_every_host_through_resource_areas(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("byurl"))
    code, report = run(base, capsys, "onboard", f"{base}/ByUrl/", "--version", "1.0.0")
    assert code == 0 and by_org(report)["ByUrl"]["status"] == "done"
    assert org.installed is not None
    hosts = {path.split("/")[1] for _, path, _ in world.log}
    assert {"byurl", "vssps", "vsaex", "extmgmt", "gallery"} <= {h.lower() for h in hosts}


def test_already_installed_at_the_version_changes_nothing_but_the_claim(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("same", installed={"version": "1.2.0", "flags": "none"}, shared=True))
    code, report = run(base, capsys, "onboard", "same", "--version", "1.2.0")
    assert code == 0
    assert by_org(report)["same"]["actions"] == ["claim"]
    assert [m for m, _ in writes_to(world, "same")] == ["PATCH"]  # the settings entry only
    world.log.clear()
    code, report = run(base, capsys, "onboard", "same", "--version", "1.2.0", "--recheck")
    assert by_org(report)["same"]["actions"] == [] and world.writes() == []


def test_older_version_is_updated(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("older", installed={"version": "1.1.9", "flags": "none"}, shared=True))
    code, entry = single(base, capsys, "onboard", "older", "--version", "1.10.0")
    assert code == 0 and entry["actions"] == ["claim", "update"], entry
    assert org.installed == {"version": "1.10.0", "flags": "none"}
    assert entry["installed_version"] == "1.10.0"


def test_newer_version_is_left_alone(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("newer", installed={"version": "2.0.0", "flags": "none"}, shared=True))
    code, report = run(base, capsys, "onboard", "newer", "--version", "1.0.0")
    assert code == 0 and by_org(report)["newer"]["actions"] == ["claim"]
    assert org.installed == {"version": "2.0.0", "flags": "none"}


def test_disabled_is_reported_and_left_unless_enable(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("off", installed={"version": "1.0.0", "flags": "disabled"}, shared=True))
    code, entry = single(base, capsys, "onboard", "off", "--version", "1.0.0")
    assert code == 0 and entry["status"] == "disabled"
    assert "--enable" in entry["fix"]
    assert org.installed == {"version": "1.0.0", "flags": "disabled"}
    assert writes_to(world, "off") == []
    code, entry = single(base, capsys, "onboard", "off", "--version", "1.0.0", "--enable")
    assert code == 0 and entry["status"] == "done" and "enable" in entry["actions"]
    assert org.installed == {"version": "1.0.0", "flags": "none"}


@pytest.mark.parametrize(
    ("settings", "failing", "cause", "fix"),
    [
        ({"license": "stakeholder"}, "Access level", "Access level: Stakeholder",
         "assign Basic (or Basic + Test Plans) access"),
        ({"admin": False}, "Project Collection Administrator",
         "Project Collection Administrator: not a member", "Project Collection Administrators"),
    ],
    ids=["stakeholder", "not-an-administrator"],
)  # fmt: skip
def test_missing_prerequisite_stops_that_organization_with_the_fix(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str],
    settings: dict[str, Any], failing: str, cause: str, fix: str,
) -> None:  # fmt: skip
    org = world.add(Org("lacking", **settings))
    code, entry = single(base, capsys, "onboard", "lacking")
    assert code == 1 and entry["status"] == "failed"
    assert cause in entry["cause"] and fix in entry["fix"]
    assert {c["name"] for c in entry["checks"] if not c["ok"]} == {failing}
    assert org.installed is None and world.writes() == []


@pytest.mark.parametrize(
    ("settings", "check", "expected"),
    [
        ({"oauth_disallowed": True}, "OAuth", {"ok": False, "advisory": True,
                                               "detail": "appears off"}),
        ({"oauth_disallowed": False}, "OAuth", {"ok": True, "detail": "appears on"}),
        ({"service_principal": True}, "Access level", {"ok": True, "detail": "Basic"}),
    ],
    ids=["oauth-off-is-advisory", "oauth-on", "service-principal-entitlement"],
)  # fmt: skip
def test_onboarded_with_the_check_reported(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str],
    settings: dict[str, Any], check: str, expected: dict[str, Any],
) -> None:  # fmt: skip
    org = world.add(Org("checked", **settings))
    code, entry = single(base, capsys, "onboard", "checked")
    assert code == 0 and entry["status"] == "done" and org.installed is not None
    found = check_named(entry, check)
    assert found == {**found, **expected}


def test_three_organizations_one_throttled_the_others_complete_and_a_rerun_does_the_rest(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ("alpha", "bravo", "charlie")
    for name in names:
        world.add(Org(name))
    world.orgs["bravo"].fail["projects"] = (429, 0)  # past every retry the SDK makes
    code, report = run(base, capsys, "onboard", *names)
    outcomes = by_org(report)
    assert (code, [outcomes[n]["status"] for n in names]) == (1, ["done", "failed", "done"])
    assert "throttled during listing projects (429, Retry-After 0s)" in outcomes["bravo"]["cause"]
    assert "re-run" in outcomes["bravo"]["fix"]
    tries = [p for m, p, _ in world.log if m == "GET" and p.startswith("/bravo/_apis/projects")]
    assert len(tries) == 4  # the SDK's three retries on a GET, honouring Retry-After
    assert world.orgs["bravo"].installed is None
    world.orgs["bravo"].fail.clear()
    world.log.clear()
    code, report = run(base, capsys, "onboard", *names)
    outcomes = by_org(report)
    assert (code, [outcomes[n]["status"] for n in names]) == (0, ["skipped", "done", "skipped"])
    paths = [path.lower() + "/" for _, path, _ in world.log]
    assert not [p for p in paths if "/alpha/" in p or "/charlie/" in p]  # only what was left
    assert world.orgs["bravo"].installed is not None


def test_forbidden_share_names_the_cause(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("noshare"))
    org.fail["share_post"] = (403, None)  # the caller is not in the extension's publisher
    code, entry = single(base, capsys, "onboard", "noshare")
    assert code == 1 and entry["status"] == "failed"
    assert "access denied for sharing container-mapping.container-mapping (403)" in entry["cause"]
    assert "publisher" in entry["fix"] and org.installed is None


def test_throttled_install_waits_for_retry_after_once(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("slow"))
    org.fail_once["by_name_post"] = (429, 1)
    code, report = run(base, capsys, "onboard", "slow")
    assert code == 0 and by_org(report)["slow"]["status"] == "done"
    posts = [p for m, p, _ in world.log if m == "POST" and "InstalledExtensionsByName" in p]
    assert len(posts) == 2 and org.installed is not None


def test_refused_pat_names_the_credential(
    world: World,
    base: str,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.add(Org("locked"))
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", "expired-token-value")
    code, entry = single(base, capsys, "onboard", "locked")
    assert code == 1 and "401" in entry["cause"] and "AZURE_DEVOPS_EXT_PAT" in entry["fix"]
    assert "expired-token-value" not in json.dumps(entry)


def test_dry_run_changes_nothing_on_the_standin_or_in_the_state(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("fresh"))
    world.add(Org("older", installed={"version": "0.9.0", "flags": "none"}, shared=True))
    code, report = run(base, capsys, "onboard", "fresh", "older", "--dry-run", "--version", "1.0.0")
    outcomes = by_org(report)
    assert code == 0 and report["dryRun"] is True
    assert outcomes["fresh"]["status"] == "would-change"
    assert outcomes["fresh"]["actions"] == ["claim", "share", "install"]
    assert outcomes["older"]["actions"] == ["claim", "update"]
    assert world.writes() == []
    assert world.orgs["fresh"].installed is None and world.orgs["fresh"].settings == {}
    assert not state_dir.exists()


def test_a_second_configuration_is_refused_with_the_reason(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("taken"))
    assert run(base, capsys, "onboard", "taken", "--config-name", "prod")[0] == 0
    claim = dict(org.settings[KEY])
    code, entry = single(base, capsys, "onboard", "taken", "--config-name", "staging")
    assert code == 1 and entry["status"] == "refused"
    assert "'prod'" in entry["cause"] and "--config-name prod" in entry["fix"]
    assert org.settings[KEY] == claim
    code, entry = single(base, capsys, "offboard", "taken", "--config-name", "staging")
    assert code == 1 and entry["status"] == "refused"
    assert org.installed is not None
    (state_dir / "onboard" / "prod.json").unlink()  # the same name, but not the same state
    code, entry = single(base, capsys, "onboard", "taken", "--config-name", "prod")
    assert code == 1 and entry["status"] == "refused"
    assert "state file" in entry["fix"] and org.settings[KEY] == claim


def test_all_future_sync_picks_up_an_organization_that_appears(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("first"))
    code, report = run(base, capsys, "onboard", "--all", "--future", "--version", "1.0.0")
    assert code == 0 and list(by_org(report)) == ["first"]
    saved = json.loads((state_dir / "onboard" / "default.json").read_text())
    assert saved["selection"]["future"] is True and saved["extension"]["version"] == "1.0.0"
    world.add(Org("second"))  # created after the first run, before the nightly sync
    code, report = run(base, capsys, "onboard", "sync")
    outcomes = by_org(report)
    assert code == 0
    assert outcomes["first"]["status"] == "skipped" and outcomes["second"]["status"] == "done"
    assert world.orgs["second"].installed == {"version": "1.0.0", "flags": "none"}


def test_sync_without_future_does_not_take_new_organizations(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("first"))
    assert run(base, capsys, "onboard", "--all")[0] == 0
    world.add(Org("later"))
    code, report = run(base, capsys, "onboard", "sync")
    assert code == 0 and list(by_org(report)) == ["first"]
    assert world.orgs["later"].installed is None


def test_sync_before_any_onboard_is_a_usage_error(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["onboard", "sync"]) == 2
    assert "run `onboard` first" in capsys.readouterr().err


def test_offboard_uninstalls_unshares_and_releases_the_claim(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("leaving"))
    assert run(base, capsys, "onboard", "leaving")[0] == 0
    world.log.clear()
    code, report = run(base, capsys, "offboard", "leaving", "--dry-run")
    assert by_org(report)["leaving"]["actions"] == ["uninstall", "unshare", "release claim"]
    assert world.writes() == [] and org.installed is not None
    code, entry = single(base, capsys, "offboard", "leaving")
    assert code == 0 and entry["status"] == "offboarded"
    assert org.installed is None and not org.shared and KEY not in org.settings
    saved = json.loads((state_dir / "onboard" / "default.json").read_text())
    assert saved["organizations"]["leaving"]["status"] == "offboarded"
    code, report = run(base, capsys, "onboard", "leaving", "--config-name", "another")
    assert code == 0 and org.installed is not None  # free to be claimed again


def test_table_output_without_json(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("tabled", license="stakeholder"))
    code = main(["onboard", "tabled", "--org-url", base + "/{org}"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Prerequisites" in captured.out and "Stakeholder" in captured.out
    assert "1 of 1 organizations not onboarded" in captured.err


def test_a_timeout_fails_that_organization_only(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("quick"))
    world.add(Org("stuck")).delay["repositories"] = 2.0
    code = main(["onboard", "quick", "stuck", "--json", "--org-url", base + "/{org}",
                 "--request-timeout", "0.5"])  # fmt: skip
    outcomes = by_org(json.loads(capsys.readouterr().out))
    assert code == 1 and outcomes["quick"]["status"] == "done"
    assert outcomes["stuck"]["status"] == "failed"
    assert "no answer to listing repositories in time" in outcomes["stuck"]["cause"]


def test_offboard_leaves_an_organization_this_configuration_never_onboarded(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = world.add(Org("manual", installed={"version": "1.0.0", "flags": "none"}, shared=True))
    code, entry = single(base, capsys, "offboard", "manual")
    assert code == 1 and entry["status"] == "refused" and "not onboarded by" in entry["cause"]
    assert world.writes() == [] and org.installed is not None


def test_unknown_organization_says_to_check_the_name(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("known"))
    code, report = run(base, capsys, "onboard", "known", "typo")
    outcomes = by_org(report)
    assert code == 1 and outcomes["known"]["status"] == "done"
    assert outcomes["typo"]["status"] == "failed"
    assert "404" in outcomes["typo"]["cause"]
    assert "check the organization name or URL" in outcomes["typo"]["fix"]


def test_sync_keeps_recorded_organizations_current_when_the_listing_fails(
    world: World, base: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.add(Org("kept"))
    assert run(base, capsys, "onboard", "--all", "--future", "--version", "1.0.0")[0] == 0
    world.add(Org("unseen"))
    world.orgs["kept"].installed = None  # removed by hand since
    world.everywhere.fail["accounts"] = (403, None)
    code, report = run(base, capsys, "onboard", "sync", "--recheck")
    outcomes = by_org(report)
    assert code == 1
    assert outcomes["(new organizations)"]["status"] == "failed"
    assert "access denied for listing your organizations (403)" in (
        outcomes["(new organizations)"]["cause"])  # fmt: skip
    assert outcomes["kept"]["status"] == "done" and "install" in outcomes["kept"]["actions"]
    assert "unseen" not in outcomes and world.orgs["unseen"].installed is None

"""`serve` and `db upgrade` from the command line: what they say when they cannot run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.service.server import ROOT


def run(*args: str, site: bool = True, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    flags = [] if site else ["-S"]  # -S: no site-packages, as on a machine without the extra
    return subprocess.run(
        [sys.executable, *flags, "-m", "container_mapping", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


def test_without_the_extra_serve_says_what_to_install() -> None:
    for args in (["serve"], ["db", "upgrade"]):
        done = run(*args, site=False)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "container-mapping: the service needs its extra: "
            "pip install 'container-mapping[service]'"
        ]


def test_a_bad_configuration_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "service.yml"
    path.write_text("organizations:\n  - {name: x, id: 5e3a7c1d-2b4f-4a6e-9c8d-0f1e2d3c4b5a, "
                    "issuer: 'http://vstoken.example.com/x'}\n")  # fmt: skip
    done = run("serve", "--config", str(path))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "organizations[0].issuer" in line and "https" in line


def test_a_served_process_freezes_its_start_and_collects_young_objects_rarely(
    tmp_path: Path,
) -> None:
    """What uvicorn's factory builds in each worker (in a process of its own: it sets the
    collector of the process that calls it)."""
    code = (
        "import gc\n"
        "from container_mapping.service.app import GC_THRESHOLD, from_environment\n"
        "from_environment()\n"
        "print(gc.get_threshold()[0] == GC_THRESHOLD, gc.get_freeze_count() > 10_000)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "CONTAINER_MAPPING_DATABASE": f"sqlite:///{tmp_path / 'm.db'}",
        },
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]

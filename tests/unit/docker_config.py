"""A Docker config of a test's own: `~/.docker/config.json` and credential helpers on PATH."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

USER, PASSWORD = "alice", "s3cret-pw"


def isolated_environ(tmp_path: Path) -> dict[str, str]:
    """An environment of the test's own: no proxies, no Docker config of the machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}


def write_config(environ: dict[str, str], config: dict[str, object]) -> Path:
    directory = Path(environ["HOME"]) / ".docker"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def basic_config(registry: str, user: str = USER, password: str = PASSWORD) -> dict[str, object]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {registry: {"auth": auth}}}


def install_helper(environ: dict[str, str], name: str, script: str) -> Path:
    """A `docker-credential-<name>` program on the test environment's PATH."""
    path = Path(environ["PATH"].split(":")[0]) / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path

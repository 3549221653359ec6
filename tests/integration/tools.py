"""podman and buildah as a pipeline step runs them, in a storage of the test's own.

Every call uses `--storage-driver vfs --cgroup-manager cgroupfs --events-backend file` and a
root under the test's directory, so no test touches the host's default storage (whose driver
another user may have chosen).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

STORAGE = ("--storage-driver", "vfs")


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed")
    return found


class Tools:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.runroot = tempfile.mkdtemp(prefix="cm-run-")  # podman wants it under 50 characters
        self.storage = (*STORAGE, "--root", str(root / "storage"), "--runroot", self.runroot)

    def close(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)

    def podman(self, *args: str) -> str:
        command = [require("podman"), *self.storage, "--cgroup-manager", "cgroupfs"]
        return _run([*command, "--events-backend", "file", *args])

    def buildah(self, *args: str) -> str:
        return _run([require("buildah"), *self.storage, *args])

    def podman_image(self, tag: str, content: str | None = None) -> None:
        """Build a one-file scratch image with podman, tagged `tag`."""
        context = self.root / f"context-{uuid.uuid4().hex[:8]}"
        context.mkdir()
        (context / "payload").write_text(content or uuid.uuid4().hex)
        (context / "Containerfile").write_text("FROM scratch\nCOPY payload /payload\n")
        self.podman("build", "-q", "-t", tag, str(context))

    def buildah_image(self, tag: str) -> None:
        container = self.buildah("from", "scratch").strip()
        payload = self.root / f"payload-{uuid.uuid4().hex[:8]}"
        payload.write_text(uuid.uuid4().hex)
        self.buildah("copy", container, str(payload), "/payload")
        self.buildah("commit", "-q", container, tag)
        self.buildah("rm", container)


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}… failed: {done.stderr.strip()[-500:]}")
    return done.stdout

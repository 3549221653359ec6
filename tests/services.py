"""A Docker engine of a test's own, started and removed by `scripts/services.sh`.

For tests that fill an engine with what no other test should see (the scale test's 10,000
images): stopping the engine and deleting its directory takes a second or two, where removing
the images one by one from a shared engine took minutes. Its store goes on tmpfs where there is
one, since the engine writes every image's metadata to disk as it loads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "scripts" / "services.sh"


def _fast_tmp() -> str | None:
    shm = "/dev/shm"  # noqa: S108 - a directory of our own is made below it
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _services(command: str, state: str, registry: str) -> str:
    env = dict(os.environ, CM_SERVICES_DIR=state, CM_REGISTRY_ADDR=registry)
    done = subprocess.run(
        ["bash", str(SERVICES), command], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"services.sh {command} failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def private_engine(registry: str) -> Iterator[str]:
    """A fresh engine that may push to `registry`; yields its DOCKER_HOST, then removes it all."""
    state = tempfile.mkdtemp(prefix="cm-test-engine.", dir=_fast_tmp())
    try:
        exports = _services("start", state, registry)
        hosts = [line for line in exports.splitlines() if line.startswith("export DOCKER_HOST=")]
        yield hosts[0].partition("=")[2]
    finally:
        try:
            _services("stop", state, registry)
        finally:
            shutil.rmtree(state, ignore_errors=True)

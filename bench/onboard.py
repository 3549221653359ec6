"""Benchmark: `container-mapping onboard` over 1, 10 and 50 organizations of the local stand-in.

Prints, per case, the wall time of the whole command in a fresh Python process (as a pipeline
step runs it, SDK import and route discovery included), the time per organization, and the
requests per organization. A second run of the same case is timed too: every organization is
then skipped from the state (what a re-run after a partial failure costs). No services needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
from tests.azdo.standin import Org, World, standin  # noqa: E402

PAT = "bench-pat"
CASES = (1, 10, 50)


def timed_run(base: str, names: list[str], env: dict[str, str]) -> float:
    argv = [sys.executable, "-m", "container_mapping", "onboard", *names, "--json",
            "--org-url", base + "/{org}"]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode()[-2000:])
    return elapsed


def case(count: int) -> None:
    world = World(pat=PAT)
    names = [f"org{i:03d}" for i in range(count)]
    for name in names:
        world.add(Org(name, projects=7, repositories=4))
    with tempfile.TemporaryDirectory() as scratch, standin(world) as base:
        env = {**os.environ, "AZURE_DEVOPS_EXT_PAT": PAT, "PYTHONPATH": str(ROOT),
               "CONTAINER_MAPPING_STATE_DIR": f"{scratch}/state",
               "AZURE_DEVOPS_CACHE_DIR": f"{scratch}/cache"}  # fmt: skip
        first = timed_run(base, names, env)
        requests = len(world.log)
        again = timed_run(base, names, env)
    print(
        f"{count:3d} organizations: {first:6.2f} s ({first / count * 1000:5.0f} ms each, "
        f"{requests / count:4.1f} requests each); re-run with all done: {again:5.2f} s",
        flush=True,
    )


if __name__ == "__main__":
    for count in CASES:
        case(count)

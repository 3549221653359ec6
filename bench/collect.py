"""Benchmark: `container-mapping collect` while the engine holds 0, 300 and 3,000 other images.

Prints the median wall time of the whole command (a fresh Python process, as a pipeline step
runs it) with 5 images pushed in the window. Target: under 400 ms in every case, no growth with
the engine's size beyond noise. Needs the services: `eval "$(scripts/services.sh start)"`.

The other images are distinct (one config each, one shared layer) and loaded in one
`docker load` archive, so filling the engine takes seconds, not a build per image.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import docker

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
from tests.integration.images import LABEL, build, image_archive, push  # noqa: E402

RUNS = 9
SIZES = (0, 300, 3000)


def timed_collect(since: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "container_mapping", "collect", "--since", since, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"collect failed: {result.stderr}")
    if len([i for i in json.loads(result.stdout)["images"] if i["pushed"]]) != 5:
        raise SystemExit("collect did not find the 5 pushed images")
    return elapsed


def main() -> None:
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=600)
    registry = os.environ.get("CM_TEST_REGISTRY", "127.0.0.1:5000")
    run = uuid.uuid4().hex[:8]
    loaded = 0
    print(f"collect, 5 images pushed in the window, median of {RUNS} runs (fresh process each)")
    try:
        for size in SIZES:
            if size > loaded:
                client.images.load(image_archive(loaded, size - loaded, run))
                loaded = size
            held = len(client.images.list(all=True))
            time.sleep(1.1)  # the window starts after everything loaded
            since = datetime.now(timezone.utc).isoformat()
            for n in range(5):
                tag = f"{registry}/bench/pushed-{run}:{size}-{n}"
                build(client, tag)
                push(client, tag)
            time.sleep(0.05)
            times = sorted(timed_collect(since) for _ in range(RUNS))
            print(
                f"  engine holds {held:>5} images ({size:>4} others loaded): "
                f"median {statistics.median(times) * 1000:6.1f} ms  "
                f"(min {times[0] * 1000:.1f}, max {times[-1] * 1000:.1f})"
            )
    finally:
        for image in client.images.list(filters={"label": f"{LABEL}={run}"}):
            client.images.remove(image.id, force=True)
        client.close()


if __name__ == "__main__":
    main()

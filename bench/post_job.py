"""Benchmark: post-job through the Node shim, as the agent runs it in every job.

Prints wall time (median, min, max of fresh runs) and peak RSS for:
- no engine on the agent (no DOCKER_HOST, nothing at the default socket);
- 5 images pushed in the job while the engine holds 300, then 3,000 other images.

Token and ingestion routes are served by the test stand-in (`tests/e2e/stubs.py`) on loopback,
so a run includes the token request and the Defender POST. Post-job starts the Python pre-job
recorded (`CONTAINERMAPPING_PYTHON`), as in a real job; the PATH search is measured apart.

Peak RSS is reported twice: the whole step (the larger of Node and Python, from `wait4`), and
the Python process alone (the same command run without the shim). Targets on this machine:
no engine <= 200 ms; 5 pushed among 3,000 <= 250 ms; peak RSS <= 40 MB.

Needs the services: `eval "$(scripts/services.sh start)"`, then `python3 bench/post_job.py`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

import docker  # type: ignore[import-untyped]  # noqa: E402

from tests.e2e.shim import SHIM, pipeline_env, pre_job  # noqa: E402
from tests.e2e.stubs import AzureStub  # noqa: E402
from tests.integration.images import LABEL, build, image_archive, push  # noqa: E402  # noqa: E402

RUNS = 11
SIZES = (300, 3000)


# Runs the measured command from a small parent: a child's ru_maxrss includes the RSS its
# parent had when it forked (the kernel keeps the old memory's high-water mark across exec), so
# spawning straight from this process (the docker SDK, image archives) would inflate it.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
sys.stderr.write("%f %d\\n" % (elapsed, usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_many(argv: Sequence[str], env: Mapping[str, str], check: str) -> tuple[list[float], float]:
    """Sorted wall times (seconds) of RUNS fresh runs, and the largest peak RSS (MB)."""
    times, peak = [], 0.0
    for _ in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-S", "-E", "-c", LAUNCHER, *argv],
            env=dict(env),
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if check not in done.stdout:
            raise SystemExit(f"unexpected output (wanted {check!r}):\n{done.stdout}{done.stderr}")
        elapsed, rss_kb = done.stderr.strip().splitlines()[-1].split()
        times.append(float(elapsed))
        peak = max(peak, int(rss_kb) / 1024)
    return sorted(times), peak


def python_alone(env: Mapping[str, str]) -> list[str]:
    """The command the shim runs, without the shim (for the Python process's own figures)."""
    bootstrap = (
        "import sys\nsys.path.insert(0, sys.argv[1])\n"
        "from container_mapping.task import main\nsys.exit(main(sys.argv[2:]))"
    )
    python = env.get("CONTAINERMAPPING_PYTHON") or sys.executable
    return [python, "-E", "-s", "-S", "-c", bootstrap, str(ROOT), "post-job"]


def line(label: str, times: list[float], peak: float) -> str:
    return (
        f"  {label:<44} median {statistics.median(times) * 1000:6.1f} ms "
        f"(min {times[0] * 1000:6.1f}, max {times[-1] * 1000:6.1f})  peak RSS {peak:5.1f} MB"
    )


def no_engine(node: str) -> None:
    home = tempfile.mkdtemp(prefix="cm-bench-home-")
    with AzureStub() as stub:
        env = pipeline_env(stub.collection_uri, HOME=home, INPUT_ENDPOINT=stub.ingest_url)
        env.pop("DOCKER_HOST", None)
        env = pre_job(env)
        check = "no Docker engine on this agent"
        times, peak = run_many([node, str(SHIM)], env, check)
        print(line("no engine, through the shim", times, peak))
        times, peak = run_many(python_alone(env), env, check)
        print(line("no engine, Python alone", times, peak))
        path_env = {k: v for k, v in env.items() if k != "CONTAINERMAPPING_PYTHON"}
        times, peak = run_many([node, str(SHIM)], path_env, check)
        print(line("no engine, shim searching PATH (no pre-job)", times, peak))
    shutil.rmtree(home, ignore_errors=True)


def crowded(node: str, client: docker.DockerClient, registry: str, run: str) -> None:
    loaded = 0
    for size in SIZES:
        client.images.load(image_archive(loaded, size - loaded, run))
        loaded = size
        with AzureStub() as stub:
            env = pipeline_env(
                stub.collection_uri,
                DOCKER_HOST=os.environ["DOCKER_HOST"],
                INPUT_ENDPOINT=stub.ingest_url,
            )
            env = pre_job(env)
            for n in range(5):
                tag = f"{registry}/bench/post-job-{run}:{size}-{n}"
                build(client, tag)
                push(client, tag)
            time.sleep(0.05)
            held = len(client.images.list())
            label = f"5 pushed among {held} images, through the shim"
            times, peak = run_many([node, str(SHIM)], env, "mapped 5 images")
            print(line(label, times, peak))
            times, peak = run_many(python_alone(env), env, "mapped 5 images")
            print(line(f"5 pushed among {held} images, Python alone", times, peak))


def main() -> None:
    node = shutil.which("node")
    if not node or "DOCKER_HOST" not in os.environ:
        raise SystemExit('needs node and the services: eval "$(scripts/services.sh start)"')
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=900)
    registry = os.environ.get("CM_TEST_REGISTRY", "127.0.0.1:5000")
    run = f"post-job-{uuid.uuid4().hex[:8]}"
    times, peak = run_many([node, "-e", "0"], os.environ, "")
    print(f"post-job, fresh process each run, {RUNS} runs per line")
    print(line("reference: node -e 0", times, peak))
    times, peak = run_many([sys.executable, "-E", "-s", "-S", "-c", "pass"], os.environ, "")
    print(line("reference: python3 -E -s -S -c pass", times, peak))
    try:
        no_engine(node)
        crowded(node, client, registry, run)
    finally:
        client.images.prune(filters={"dangling": False, "label": f"{LABEL}={run}"})
        client.close()


if __name__ == "__main__":
    main()

"""Benchmark: what issue 9's capture costs a job.

- pre-job through the Node shim, with the recorder (AGENT_TEMPDIRECTORY and a unix-socket
  engine) and without it (no AGENT_TEMPDIRECTORY): the median wall time of each and the
  difference, runs interleaved;
- the recorder's resident memory (VmRSS and VmHWM from /proc) once it follows the engine;
- post-job's capture with every collector and 5 pushes through each tool (Docker engine,
  podman, buildah with --digestfile, a BuildKit metadata file each), registry questions
  included, against the Docker collector alone on the same job;
- post-job through the shim where no tool is present (no engine, no podman log, no job
  directories), this tree against the tree named by `--baseline` (default /work/main: the
  code before issue 9), interleaved.

Needs the services: `eval "$(scripts/services.sh start)"`, then `python3 bench/recorder.py`
(`--runs 5` to shorten it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from container_mapping.capture import (  # noqa: E402
    all_collectors,
    capture,
    docker_collectors,
    registry_factory,  # noqa: E402
)
from container_mapping.context import from_environment  # noqa: E402
from container_mapping.model import CollectionWindow  # noqa: E402
from container_mapping.recorder import FILE_NAME, start  # noqa: E402
from tests.e2e.shim import SHIM, node, pipeline_env  # noqa: E402
from tests.integration.images import build, push  # noqa: E402
from tests.integration.tools import Tools  # noqa: E402


def _shim(env: dict[str, str], command: str, shim: Path = SHIM) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [node(), str(shim)], env={**env, "INPUT_COMMAND": command}, capture_output=True, text=True
    )
    return (time.perf_counter() - started) * 1000, done.stdout


def _recorder_pid(temp: Path) -> int | None:
    path = temp / FILE_NAME
    for _ in range(100):
        if path.exists() and path.read_bytes().endswith(b"\n"):
            return int(json.loads(path.read_bytes().split(b"\n")[0])["pid"])
        time.sleep(0.02)
    return None


def _memory(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def pre_job(runs: int, docker_host: str) -> None:
    env = pipeline_env("http://127.0.0.1:9/fabrikam/", DOCKER_HOST=docker_host)
    with_recorder, without, memory = [], [], []
    for _ in range(runs):
        temp = Path(tempfile.mkdtemp(prefix="cm-bench-"))
        try:
            without.append(_shim(env, "pre-job")[0])
            with_recorder.append(_shim({**env, "AGENT_TEMPDIRECTORY": str(temp)}, "pre-job")[0])
            pid = _recorder_pid(temp)
            if pid is not None:
                time.sleep(1.0)  # following the engine by now
                memory.append(_memory(pid))
        finally:
            (temp / f"{FILE_NAME}.done").touch()
            time.sleep(0.6)
            shutil.rmtree(temp, ignore_errors=True)
    spawn = []
    for _ in range(runs):
        temp = Path(tempfile.mkdtemp(prefix="cm-bench-"))
        started = time.perf_counter()
        start({"AGENT_TEMPDIRECTORY": str(temp), "DOCKER_HOST": docker_host}, time.time())
        spawn.append((time.perf_counter() - started) * 1000)
        _recorder_pid(temp)
        (temp / f"{FILE_NAME}.done").touch()
        time.sleep(0.6)
        shutil.rmtree(temp, ignore_errors=True)
    a, b = statistics.median(without), statistics.median(with_recorder)
    print(
        f"recorder.start() in pre-job       {statistics.median(spawn):7.2f} ms (median of {runs})"
    )
    print(f"pre-job without the recorder      {a:7.1f} ms (median of {runs})")
    print(f"pre-job with the recorder         {b:7.1f} ms   added {b - a:+.1f} ms")
    if memory:
        rss = max(m[0] for m in memory) / 1024
        hwm = max(m[1] for m in memory) / 1024
        print(f"recorder resident memory          {rss:7.1f} MB (peak {hwm:.1f} MB)")


def all_tools(runs: int, docker_host: str, registry: str) -> None:
    client = docker.DockerClient(base_url=docker_host, timeout=60)
    root = Path(tempfile.mkdtemp(prefix="cm-bench-"))
    tools = Tools(root)
    try:
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        repo = f"{registry}/cmbench/{uuid.uuid4().hex[:10]}"
        for i in range(5):
            build(client, f"{repo}-docker:{i}")
            push(client, f"{repo}-docker:{i}")
            tools.podman_image(f"{repo}-podman:{i}")
            tools.podman("push", "--tls-verify=false", f"{repo}-podman:{i}")
            tools.buildah_image(f"{repo}-buildah:{i}")
            digest_file = root / f"buildah-{i}.digest"
            tools.buildah("push", "--tls-verify=false", "--digestfile", str(digest_file),
                          f"{repo}-buildah:{i}")  # fmt: skip
            tools.podman_image(f"{repo}-kit:{i}")
            kit_digest = root / f"kit-{i}.digest"
            tools.podman("push", "--tls-verify=false", "--digestfile", str(kit_digest),
                         f"{repo}-kit:{i}")  # fmt: skip
            metadata = {"containerimage.digest": kit_digest.read_text().strip(),
                        "image.name": f"{repo}-kit:{i}"}  # fmt: skip
            (root / f"metadata-{i}.json").write_text(json.dumps(metadata))
            kit_digest.unlink()  # a BuildKit job writes the metadata file, not a digest file
        environ = {
            "DOCKER_HOST": docker_host,
            "CONTAINERMAPPING_JOBDIRECTORIES": str(root),
            "CONTAINERMAPPING_STORAGEROOTS": str(root / "storage"),
        }
        time.sleep(0.1)
        window = CollectionWindow(since, datetime.now(timezone.utc))
        every, docker_only, found = [], [], 0
        for _ in range(runs):
            registry_for = registry_factory(environ)
            started = time.perf_counter()
            report = capture(window, from_environment(environ),
                             collectors=all_collectors(environ, registry_for),
                             registry=registry_for, deadline=time.monotonic() + 60)  # fmt: skip
            every.append((time.perf_counter() - started) * 1000)
            found = len([r for r in report.pushed if r.reference.name.startswith(repo)])
            registry_for = registry_factory(environ)
            started = time.perf_counter()
            capture(window, from_environment(environ), collectors=docker_collectors(environ),
                    registry=registry_for, deadline=time.monotonic() + 60)  # fmt: skip
            docker_only.append((time.perf_counter() - started) * 1000)
        a, b = statistics.median(docker_only), statistics.median(every)
        print(f"capture, Docker collector alone   {a:7.1f} ms (5 docker pushes of 20)")
        print(f"capture, every collector          {b:7.1f} ms ({found} of 20 pushes found)")
    finally:
        client.close()
        tools.close()
        shutil.rmtree(root, ignore_errors=True)


def no_tools(runs: int, baseline: Path) -> None:
    env = pipeline_env("http://127.0.0.1:9/fabrikam/")
    env["CONTAINERMAPPING_JOBSTART"] = datetime.now(timezone.utc).isoformat()
    env["HOME"] = tempfile.mkdtemp(prefix="cm-bench-home-")
    ours, before = [], []
    try:
        for _ in range(runs):
            before.append(_shim(env, "post-job", baseline / "task" / "index.js")[0])
            ours.append(_shim(env, "post-job")[0])
    finally:
        shutil.rmtree(env["HOME"], ignore_errors=True)
    a, b = statistics.median(before), statistics.median(ours)
    print(f"post-job, no tool, before issue 9 {a:7.1f} ms ({baseline})")
    print(f"post-job, no tool, every collector{b:7.1f} ms   added {b - a:+.1f} ms")
    podman_log = Path("/run/libpod/events/events.log")
    if podman_log.exists():
        print(f"  (podman's event log exists here, {podman_log.stat().st_size} bytes: read too)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--baseline", type=Path, default=Path("/work/main"))
    parser.add_argument("--part", choices=("pre-job", "all-tools", "no-tools"), action="append")
    args = parser.parse_args()
    parts = args.part or ["pre-job", "all-tools", "no-tools"]
    docker_host = os.environ.get("DOCKER_HOST", "")
    registry = os.environ.get("CM_TEST_REGISTRY", "")
    if not docker_host.startswith("unix://") or not registry:
        sys.exit('run `eval "$(scripts/services.sh start)"` first')
    if "pre-job" in parts:
        pre_job(args.runs, docker_host)
    if "all-tools" in parts:
        all_tools(args.runs, docker_host, registry)
    if "no-tools" in parts:
        no_tools(args.runs, args.baseline)


if __name__ == "__main__":
    main()

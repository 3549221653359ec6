"""Mapping service ingest throughput and memory, with JWT verification on.

Starts `container-mapping serve` as an operator would (SQLite file in WAL mode; PostgreSQL when
`CM_TEST_POSTGRES_URL` is set), trusting a local OpenID issuer, and drives it with concurrent
keep-alive connections, each POSTing version 1.0 reports of 5 pushed images with a fresh
Idempotency-Key and a bearer token of its own (RS256, verified on every request). Prints
reports/s, latency percentiles and the resident memory of the service processes.

The load generator runs on the same machine and takes part of the CPU the service would
otherwise have, so the figures are a floor. It is wrk (Debian's `wrk`, with `reports.lua`) when
installed: it takes half the CPU of the asyncio client (`--client python`), 0.07 against
0.14 ms of the machine's CPU a report, measured under load. Both send the same prepared
requests, one at a time per keep-alive connection. `--profile` runs the app in this process,
its thread under cProfile, and prints where the time goes.

    python3 bench/service.py [--seconds 10] [--connections 32] [--workers 1 2]
                             [--client wrk|python] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import yaml  # noqa: E402

from tests.service.conftest import CONTOSO, config_document  # noqa: E402
from tests.service.issuer import Issuer  # noqa: E402
from tests.service.reports import report  # noqa: E402
from tests.service.server import ServeProcess, free_port  # noqa: E402

IMAGES = 5


def requests(issuer: Issuer, count: int, port: int) -> list[bytes]:
    """`count` distinct raw HTTP requests: own report, own key, own token."""
    template = report(CONTOSO, images=IMAGES, seed="template")
    out = []
    for n in range(count):
        body = json.loads(json.dumps(template))
        for i, image in enumerate(body["images"]):
            digest = "sha256:" + uuid.uuid4().hex + uuid.uuid4().hex
            image["digest"] = digest
            image["reference"] = f"{image['registry']}/{image['repository']}:1.0@{digest}"
            image["imageId"] = "sha256:" + f"{n:032x}{i:032x}"
        data = json.dumps(body).encode()
        head = (
            f"POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {issuer.token(CONTOSO)}\r\n"
            f"Idempotency-Key: bench-{uuid.uuid4().hex}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        out.append(head.encode() + data)
    return out


async def connection(
    port: int, queue: list[bytes], deadline: float, latencies: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue and time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(queue.pop())
            status, length = await _response_head(reader)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            return status, length
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)


def drive(port: int, queue: list[bytes], seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(connection(port, queue, deadline, latencies, statuses) for _ in range(connections))
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies.sort()
    ok = statuses.get(201, 0)
    return {
        "reports_per_s": ok / elapsed,
        "ok": ok,
        "statuses": statuses,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
    }


def drive_wrk(
    port: int, queue: list[bytes], seconds: float, connections: int, work: Path
) -> dict[str, Any]:
    """The same load from wrk: one thread, `connections` keep-alive connections."""
    prepared = work / "requests.bin"
    prepared.write_bytes(b"".join(request + b"\0" for request in queue))
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "30s",
        "-s", str(Path(__file__).with_name("reports.lua")), f"http://127.0.0.1:{port}/",
        "--", str(prepared),
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["sent"] > result["available"]:
        raise SystemExit(f"wrk sent {result['sent']} of {result['available']} requests")
    statuses = {int(k): v for k, v in result["statuses"].items()}
    return {
        "reports_per_s": statuses.get(201, 0) / result["seconds"],
        "ok": statuses.get(201, 0),
        "statuses": statuses,
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
    }


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pids(root: int) -> list[int]:
    """The serve process and its children (uvicorn's workers)."""
    pids = [root]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == root:
                pids.append(int(entry.name))
    return pids


def run_one(
    issuer: Issuer,
    database_url: str,
    workers: int,
    seconds: float,
    connections: int,
    work: Path,
    client: str,
) -> None:
    path = work / f"service-{uuid.uuid4().hex[:6]}.yml"
    document = config_document(issuer, database_url)
    path.write_text(yaml.safe_dump(document))
    port = free_port()
    server = ServeProcess(path, port, workers=workers, log=work / "serve.log").start()
    try:
        assert server.process is not None
        idle = [rss_kib(p)[0] for p in service_pids(server.process.pid)]
        drive(port, requests(issuer, 300, port), 2.0, connections)  # warm up
        queue = requests(issuer, int(seconds * 2000), port)
        load1 = os.getloadavg()[0]
        pids = service_pids(server.process.pid)
        cpu_before = sum(cpu_seconds(p) for p in pids)
        if client == "wrk":
            result = drive_wrk(port, queue, seconds, connections, work)
        else:
            result = drive(port, queue, seconds, connections)
        cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
        memory = [rss_kib(p) for p in pids]
    finally:
        server.stop()
    kind = database_url.split(":", 1)[0]
    print(
        f"{kind:18} workers={workers} connections={connections} client={client}: "
        f"{result['reports_per_s']:7.0f} reports/s ({result['ok']} in {seconds:.0f} s, "
        f"{IMAGES} images each), p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"statuses {result['statuses']}; load average before {load1:.1f}"
    )
    if result["ok"]:
        print(
            f"{'':18} service CPU {cpu / result['ok'] * 1000:.2f} ms a report (user and system, "
            "all its processes; a figure the machine's other load moves less than reports/s)"
        )
    print(
        f"{'':18} memory per process (RSS now / peak, MiB): "
        + ", ".join(f"{r / 1024:.0f}/{h / 1024:.0f}" for r, h in memory)
        + f"; idle at start: {', '.join(f'{r / 1024:.0f}' for r in idle)}"
    )


def profile(issuer: Issuer, work: Path, seconds: float, connections: int) -> None:
    """The app served in this thread under cProfile, driven from another by the asyncio client
    (cProfile sees only the thread it was enabled in)."""
    import cProfile
    import pstats
    import threading

    import uvicorn

    from container_mapping.service import config
    from container_mapping.service.app import create_app

    database = f"sqlite:///{work / 'profile.db'}"
    app = create_app(config.from_dict(config_document(issuer, database)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False))
    result: dict[str, Any] = {}

    def client() -> None:
        try:
            while not server.started:
                time.sleep(0.05)
            queue = requests(issuer, int(seconds * 1000), port)
            result.update(drive(port, queue, seconds, connections))
        finally:
            server.should_exit = True

    thread = threading.Thread(target=client)
    thread.start()
    profiler = cProfile.Profile()
    profiler.enable()
    server.run()
    profiler.disable()
    thread.join()
    print(f"profiled: {result.get('reports_per_s', 0):.0f} reports/s (in-process, under cProfile)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    issuer = Issuer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="cm-bench-service-") as scratch:
            work = Path(scratch)
            if args.profile:
                profile(issuer, work, args.seconds, args.connections)
                return
            print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
            databases = [f"sqlite:///{work / 'mappings.db'}"]
            postgres = os.environ.get("CM_TEST_POSTGRES_URL")
            if postgres and not args.no_postgres:
                databases.append(postgres)
            for url in databases:
                for workers in args.workers:
                    run_one(issuer, url, workers, args.seconds, args.connections, work, args.client)
    finally:
        issuer.stop()


if __name__ == "__main__":
    main()

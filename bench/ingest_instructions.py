"""Instructions the service executes per ingested report, counted by valgrind: a figure that
does not move with the machine's load.

`bench/service.py` measures throughput over real sockets, and on a shared 2-core machine its
figures move by a tenth to a third from one minute to the next, which hides any change smaller
than that. This bench calls the app in-process as ASGI (no sockets, no uvicorn), 16 requests in
flight against a SQLite file, with JWT verification on, and counts instructions with
callgrind: once for the warm-up alone and once for the warm-up and `--reports` more, in
parallel; the difference over `--reports` is the cost of one report. Runs of the same code
agree within about 2% (random ids and keys shape SQLite's trees, and the checkpoint thread
runs by the clock); a change is worth believing when it moves more than that. It leaves out
uvicorn's HTTP handling, the kernel and what two processes sharing one SQLite file cost each
other, so it ranks changes to the service's own path rather than predicting reports/s.

    python3 bench/ingest_instructions.py [--reports 400]      # needs Debian's valgrind
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

WARM_UP = 100
IN_FLIGHT = 16


def child(count: int, work: Path) -> None:
    """Serve the warm-up and then `count` prepared requests in-process; all must be 201."""
    import gc

    import yaml
    from starlette.types import Message

    from container_mapping.service import config
    from container_mapping.service.app import GC_THRESHOLD, create_app

    document = yaml.safe_load((work / "service.yml").read_text())
    document["database"] = f"sqlite:///{work / f'mappings-{count}.db'}"
    app = create_app(config.from_dict(document))
    prepared = pickle.loads((work / "requests.pickle").read_bytes())
    statuses: dict[int, int] = {}

    async def call(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/reports",
            "raw_path": b"/v1/reports", "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080), "state": {},
        }  # fmt: skip
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # the client stays connected
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def serve(batch: list[tuple[list[tuple[bytes, bytes]], bytes]]) -> None:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(request: tuple[list[tuple[bytes, bytes]], bytes]) -> None:
            async with gate:
                await call(*request)

        await asyncio.gather(*(one(r) for r in batch))

    async def main() -> None:
        await serve(prepared[:WARM_UP])
        gc.collect()
        gc.freeze()  # as `app.from_environment` does for a served process
        gc.set_threshold(GC_THRESHOLD, 20, 50)
        await serve(prepared[WARM_UP : WARM_UP + count])

    try:
        import uvloop  # what uvicorn serves on when it is installed (the service extra has it)
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
    if set(statuses) != {201}:
        raise SystemExit(f"expected only 201 answers, got {statuses}")


def _split(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    fields = (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
    return [(name.strip().lower(), value.strip()) for name, value in fields], body


def _collected(count: int, work: Path) -> subprocess.Popen[str]:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--child", str(count), str(work),
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONHASHSEED": "0"}  # one source of noise fewer
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)


def _instructions(process: subprocess.Popen[str]) -> int:
    _, err = process.communicate()
    found = re.search(r"Collected : (\d+)", err)
    if process.returncode != 0 or found is None:
        raise SystemExit(f"the measured run failed:\n{err[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--child", nargs=2, metavar=("COUNT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")

    import yaml
    from service import requests  # bench/service.py: the same requests it sends

    from tests.service.conftest import config_document
    from tests.service.issuer import Issuer

    issuer = Issuer().start()  # serves the key set to the measured processes
    try:
        with tempfile.TemporaryDirectory(prefix="cm-bench-instructions-") as scratch:
            work = Path(scratch)
            document = config_document(issuer, "sqlite://")
            (work / "service.yml").write_text(yaml.safe_dump(document))
            raws = requests(issuer, WARM_UP + args.reports, 8080)
            (work / "requests.pickle").write_bytes(pickle.dumps([_split(r) for r in raws]))
            base, measured = _collected(0, work), _collected(args.reports, work)
            per_report = (_instructions(measured) - _instructions(base)) / args.reports
    finally:
        issuer.stop()
    print(
        f"{per_report / 1e6:.3f} M instructions a report (5 images, JWT on, SQLite, in-process; "
        f"{args.reports} reports after {WARM_UP} of warm-up, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()

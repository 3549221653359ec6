"""Defender client figures: how long the DevOps configuration's operation keeps `connect`
waiting, and how fast `defender import` reads Resource Graph and stores a tenant's findings.

Against the tests' ARM stand-in (HTTPS, private CA) and the real service (uvicorn in a thread,
SQLite in a temporary directory), through the SDKs as the commands use them.

    python3 bench/defender.py                        # 2,000 images x 10 findings
    python3 bench/defender.py --images 10000 --findings 5
    python3 bench/defender.py --lro-default          # also the SDK's own polling default (slow)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from container_mapping.defender import arm as armmod  # noqa: E402
from container_mapping.defender import graph, importer  # noqa: E402
from container_mapping.defender.connector import Selection, Target, connect  # noqa: E402
from tests.defender.standin import (  # noqa: E402
    REGISTRY_KEY,
    RUNTIME_KEY,
    Arm,
    StandIn,
    bearer_token,
    cluster_id,
    finding,
    make_tls,
    registry_id,
)

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
ORG = "5e3a2f70-1b4c-4d8e-9f00-0000000c0a70"
LINK_KEY = f"link-{uuid.uuid4().hex}"


def lro(standin: StandIn, retry_after: str | None, polls: int, default: bool = False) -> float:
    from azure.mgmt.security import SecurityCenter

    standin.arm.lro_retry_after, standin.arm.lro_polls = retry_after, polls
    where = armmod.cloud(None, os.environ)
    options = armmod.client_options(where)
    if default:
        options.pop("polling_interval")
    target = Target(SUB, "rg", f"c{uuid.uuid4().hex[:8]}", "westeurope")
    start = time.perf_counter()
    with SecurityCenter(armmod.credential(where, os.environ), SUB, **options) as client:
        connect(client, target, Selection())
    return time.perf_counter() - start


def seed(standin: StandIn, images: int, findings: int, running: int) -> None:
    acr = registry_id(SUB, "rg", "contosoacr")
    aks = cluster_id(SUB, "rg", "aks-prod")
    rows: list[dict[str, Any]] = []
    for i in range(images):
        digest = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
        for j in range(findings):
            rows.append(
                finding(
                    acr,
                    REGISTRY_KEY,
                    f"CVE-{j}",
                    ("High", "Low")[j % 2],
                    registry="contosoacr.azurecr.io",
                    repository=f"app/{i % 50}",
                    digest=digest,
                    tags=[f"v{i}"],
                )
            )
        if i < running:
            rows.append(
                finding(
                    aks,
                    RUNTIME_KEY,
                    "CVE-0",
                    "High",
                    registry="contosoacr.azurecr.io",
                    repository=f"app/{i % 50}",
                    digest=digest,
                    tags=[f"v{i}"],
                )
            )
    standin.arm.findings = rows


def service(directory: Path) -> Any:
    import hashlib as h

    from container_mapping.service.app import create_app
    from container_mapping.service.config import from_dict

    settings = from_dict(
        {
            "database": f"sqlite:///{directory / 'mappings.db'}",
            "organizations": [
                {
                    "name": "contoso",
                    "id": ORG,
                    "issuer": f"https://vstoken.dev.azure.com/{ORG}",
                    "api_keys": [
                        {
                            "name": "linker",
                            "scopes": ["link"],
                            "sha256": h.sha256(LINK_KEY.encode()).hexdigest(),
                        }
                    ],
                }
            ],
        }
    )
    return create_app(settings)


def import_figures(standin: StandIn, directory: Path, args: argparse.Namespace) -> None:
    from azure.mgmt.resourcegraph import ResourceGraphClient

    from container_mapping.service.links.client import ServiceClient
    from tests.service.server import ThreadServer

    seed(standin, args.images, args.findings, args.running)
    standin.arm.page_size = 500  # Resource Graph pages of 1,000 rows
    where = armmod.cloud(None, os.environ)
    credential = armmod.credential(where, os.environ)
    app = service(directory)
    with ThreadServer(app) as server, ServiceClient(server.url, LINK_KEY) as client:
        for attempt in ("first", "second"):
            start = time.perf_counter()
            with ResourceGraphClient(credential, **armmod.client_options(where)) as graph_client:
                snapshot = graph.read(graph_client, [SUB])
            read = time.perf_counter() - start
            start = time.perf_counter()
            imported = importer.post(client, snapshot, [SUB])
            stored = time.perf_counter() - start
            print(
                f"{attempt} import: read {snapshot.rows:,} findings in {snapshot.pages} pages "
                f"in {read:.2f} s ({snapshot.rows / read:,.0f} rows/s); stored "
                f"{len(snapshot.images):,} images + {len(snapshot.running):,} running in "
                f"{imported.batches} requests in {stored:.2f} s"
            )
            print(f"  {importer.summary(snapshot, imported)}")
    app.state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--findings", type=int, default=10)
    parser.add_argument("--running", type=int, default=500)
    parser.add_argument("--lro-default", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        tls = make_tls(directory)
        state = Arm(token=bearer_token(), subscriptions={SUB})
        with StandIn(state, tls) as standin:
            os.environ.update(
                {
                    "AZURE_RESOURCE_MANAGER_ENDPOINT": standin.url,
                    "REQUESTS_CA_BUNDLE": str(tls.ca),
                    "CONTAINER_MAPPING_ARM_TOKEN": state.token,
                }
            )
            for retry_after in ("1", None, "0"):
                took = lro(standin, retry_after, polls=1)
                print(f"connect, one wait between polls, Retry-After {retry_after!r}: {took:.1f} s")
            if args.lro_default:
                took = lro(standin, "0", polls=1, default=True)
                print(f"connect, SDK's default interval, Retry-After '0': {took:.1f} s")
            import_figures(standin, directory, args)


if __name__ == "__main__":
    main()

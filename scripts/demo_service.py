"""The demo's second half: the whole loop through the self-hosted mapping service.

After the job has reported to the Defender stand-in, the same job's post-job runs again with
the task set to `protocol: mapping-service`: it reports to `container-mapping serve` on the
embedded default (SQLite in a fresh directory, WAL), which trusts a local OpenID issuer standing
in for Azure DevOps' token service; the job's OIDC token is one that issuer signed with the
job's own claims. Then the operator's side: a registry crawl, a pod document of a cluster that
runs the pushed digest (`link pods`), and `container-mapping trace`, which prints the chain and
the page's URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.service.issuer import Issuer  # noqa: E402

DEFAULT_PORT = 8080
KEEP_ENV = "DEMO_KEEP_SERVICE"


def _port() -> int:
    """The embedded default's 8080 when it is free, else any free loopback port."""
    for wanted in (DEFAULT_PORT, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", wanted))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


class DemoService:
    """`container-mapping serve` for the job's organization, with one read and one link key."""

    def __init__(self, job: dict[str, str], issuer: Issuer, workdir: Path) -> None:
        self.org_id = job["SYSTEM_COLLECTIONID"]
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.read_key = "demo-read-" + secrets.token_hex(8)
        self.link_key = "demo-link-" + secrets.token_hex(8)
        self.workdir = workdir
        self.config = workdir / "container-mapping.yml"
        document = {
            "listen": f"127.0.0.1:{self.port}",
            "organizations": [{
                "name": "contoso", "id": self.org_id, "issuer": issuer.issuer(self.org_id),
                "api_keys": [
                    {"name": "demo-reader", "sha256": _sha(self.read_key), "scopes": ["read"]},
                    {"name": "demo-linker", "sha256": _sha(self.link_key), "scopes": ["link"]},
                ],
            }],
        }  # fmt: skip
        self.config.write_text(yaml.safe_dump(document, sort_keys=False))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.workdir / "serve.log", "wb")  # noqa: SIM115 (kept for the process's life)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "container_mapping", "serve", "--config", str(self.config)],
            cwd=self.workdir,  # the embedded default keeps ./mappings.db here
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited; see {self.workdir / 'serve.log'}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the service did not become healthy within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def cli(self, *args: str, key: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CONTAINER_MAPPING_SERVER": self.url,
            "CONTAINER_MAPPING_API_KEY": key,
            "COLUMNS": os.environ.get("COLUMNS", "150"),
        }
        done = subprocess.run(
            [sys.executable, "-m", "container_mapping", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        for line in (done.stdout + done.stderr).rstrip().splitlines():
            print(f"  {line}")
        return done


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def job_token(issuer: Issuer, job: dict[str, str]) -> str:
    """The OIDC token Azure DevOps would hand this job: its claims, signed by the issuer."""
    subject = f"p://contoso/{job['SYSTEM_TEAMPROJECT']}/{job['BUILD_DEFINITIONNAME']}"
    return issuer.token(
        job["SYSTEM_COLLECTIONID"],
        sub=subject,
        prj_id=job["SYSTEM_TEAMPROJECTID"],
        def_id=job["SYSTEM_DEFINITIONID"],
        run_id=job["BUILD_BUILDID"],
        rpo_uri=job["BUILD_REPOSITORY_URI"],
        rpo_ver=job["BUILD_SOURCEVERSION"],
        rpo_ref=job["BUILD_SOURCEBRANCH"],
    )


def pod_document(reference: str, digest_reference: str) -> dict[str, Any]:
    """`kubectl get pods,replicasets -A -o json` of a cluster running the pushed image."""
    template_hash = "6d5f7c9b8"
    replica_set = f"payments-api-{template_hash}"
    return {
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"kind": "Pod", "apiVersion": "v1",
             "metadata": {"name": f"{replica_set}-x7k2p", "namespace": "payments",
                          "labels": {"app": "payments-api", "pod-template-hash": template_hash},
                          "ownerReferences": [{"kind": "ReplicaSet", "name": replica_set,
                                               "controller": True}]},
             "spec": {"containers": [{"name": "api", "image": reference}]},
             "status": {"containerStatuses": [{"name": "api", "image": reference,
                                               "imageID": f"docker-pullable://{digest_reference}"}]}},
            {"kind": "ReplicaSet", "apiVersion": "apps/v1",
             "metadata": {"name": replica_set, "namespace": "payments",
                          "ownerReferences": [{"kind": "Deployment", "name": "payments-api",
                                               "controller": True}]}},
        ],
    }  # fmt: skip


@contextmanager
def mapping_service(job: dict[str, str]) -> Iterator[tuple[DemoService, str]]:
    """The issuer and the service, running; yields the service and the job's signed token."""
    issuer = Issuer().start()
    workdir = Path(tempfile.mkdtemp(prefix="container-mapping-demo-"))
    service = DemoService(job, issuer, workdir)
    try:
        service.start()
        print(f"  serving {service.url} (SQLite {workdir / 'mappings.db'}, WAL); "
              f"issuer {issuer.base} stands in for vstoken.dev.azure.com")  # fmt: skip
        yield service, job_token(issuer, job)
    finally:
        if os.environ.get(KEEP_ENV) and service.process is not None:
            print(f"\n  the service keeps running (pid {service.process.pid}); "
                  f"read key: {service.read_key}")  # fmt: skip
        else:
            service.stop()
        issuer.stop()


def operator_side(
    service: DemoService,
    registry: str,
    tag: str,
    digest_reference: str,
    step: Callable[[str], None],
) -> None:
    """Link the registry and a cluster, then ask where the image came from and where it runs."""
    repository = tag.split("/", 1)[1].rsplit(":", 1)[0]
    step(f"link the registry: container-mapping link registry {registry} --repository {repository}")
    service.cli("link", "registry", registry, "--repository", repository, key=service.link_key)
    step(
        "a cluster runs the pushed digest: container-mapping link pods pods.json --cluster demo-aks"
    )
    pods = service.workdir / "pods.json"
    pods.write_text(json.dumps(pod_document(tag, digest_reference), indent=2))
    service.cli("link", "pods", str(pods), "--cluster", "demo-aks", key=service.link_key)
    digest = digest_reference.rsplit("@", 1)[1]
    step(f"where did it come from, where does it run: container-mapping trace {digest[:19]}…")
    service.cli("trace", digest, key=service.read_key)
    print(f"  (the page asks for a read key once: {service.read_key})")

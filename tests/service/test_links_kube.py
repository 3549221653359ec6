"""`link pods --context`: the cluster read live through the kubernetes client.

The cluster is a local HTTP server answering the Kubernetes API routes the command uses (list
pods of all namespaces, read a ReplicaSet, read a Job) with the API's own JSON, found through
a kubeconfig context like any cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from container_mapping.errors import ConfigError, Error
from container_mapping.service.links.kube import read_cluster
from container_mapping.service.links.pods import Workload, running_containers
from tests.servers import serve
from tests.service.replies import reply
from tests.service.test_links_pods import owner, pod

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
_READ = re.compile(r"^/apis/(apps|batch)/v1/namespaces/([^/]+)/(replicasets|jobs)/([^/?]+)")


class FakeCluster:
    """Pods of two workloads; one ReplicaSet and one Job readable, as the API serves them."""

    def __init__(self) -> None:
        job = "reg.example/job"
        self.pods = [
            pod("api-7c-x", ("ReplicaSet", "api-7c"), [("app", "api:1", f"reg.example/api@{D1}")]),
            pod("nightly-1-x", ("Job", "nightly-1"),
                [("run", f"{job}:1", f"docker-pullable://{job}@{D2}")]),
            pod("gone-x", ("ReplicaSet", "gone-5d"), [("app", "gone:1", "sha256:" + "3" * 64)],
                labels={"pod-template-hash": "5d"}),
        ]  # fmt: skip
        self.owners = {
            ("replicasets", "shop", "api-7c"): owner("ReplicaSet", "api-7c", ("Deployment", "api")),
            ("jobs", "shop", "nightly-1"): owner("Job", "nightly-1", ("CronJob", "nightly")),
        }
        self.requests: list[str] = []

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                cluster.requests.append(self.path)
                if self.path.startswith("/api/v1/pods"):
                    items = [{k: v for k, v in p.items() if k != "kind"} for p in cluster.pods]
                    return reply(self, 200, {"kind": "PodList", "apiVersion": "v1", "items": items})
                match = _READ.match(self.path)
                found = match and cluster.owners.get((match[3], match[2], match[4]))
                if found:
                    kind = {"replicasets": "ReplicaSet", "jobs": "Job"}[match[3]]  # type: ignore[index]
                    version = "apps/v1" if kind == "ReplicaSet" else "batch/v1"
                    return reply(self, 200, {**found, "kind": kind, "apiVersion": version})
                reply(self, 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404})  # fmt: skip

        return Handler


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    fake = FakeCluster()
    with serve(fake._handler()) as server:
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "other",
            "clusters": [{"name": "local", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}},
                         {"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}],
            "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "aks-test", "context": {"cluster": "local", "user": "me"}},
                         {"name": "other", "context": {"cluster": "dead", "user": "me"}}],
        }  # fmt: skip
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        monkeypatch.setenv("KUBECONFIG", str(path))
        yield fake


def test_the_live_cluster_gives_what_the_file_would(cluster: FakeCluster) -> None:
    found = {c.pod: c for c in running_containers(read_cluster("aks-test"))}
    assert found["api-7c-x"].workload == Workload("Deployment", "api")
    assert found["api-7c-x"].digest == D1
    assert found["nightly-1-x"].workload == Workload("CronJob", "nightly")
    assert found["nightly-1-x"].digest == D2
    # the ReplicaSet is gone: named from the pod-template-hash, marked inferred
    assert found["gone-x"].workload == Workload("Deployment", "gone", inferred=True)
    assert not found["gone-x"].resolvable
    reads = [r for r in cluster.requests if "/namespaces/" in r]
    assert len(reads) == 3  # one read per owner the pods name, never a list of every ReplicaSet


def test_an_unknown_context_is_a_usage_error(cluster: FakeCluster) -> None:
    with pytest.raises(ConfigError, match="no-such"):
        read_cluster("no-such")


def test_an_unreachable_cluster_is_one_clear_error(cluster: FakeCluster) -> None:
    with pytest.raises(Error, match="could not reach the cluster of context 'other'"):
        read_cluster("other")

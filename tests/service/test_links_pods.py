"""Reading pod documents: every imageID form, every container kind, every owner chain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from container_mapping.errors import ConfigError
from container_mapping.service.links.pods import (
    ContainerKind,
    Workload,
    load_document,
    parse_image_id,
    running_containers,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
CONFIG = "sha256:" + "c" * 64


def pod(
    name: str,
    owner: tuple[str, str] | None = None,
    containers: list[tuple[str, str, str | None]] = (),  # type: ignore[assignment]
    init: list[tuple[str, str, str | None]] = (),  # type: ignore[assignment]
    ephemeral: list[tuple[str, str, str | None]] = (),  # type: ignore[assignment]
    labels: dict[str, str] | None = None,
    namespace: str = "shop",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]

    def spec(items: Any) -> list[dict[str, str]]:
        return [{"name": n, "image": image} for n, image, _ in items]

    def status(items: Any) -> list[dict[str, Any]]:
        return [{"name": n, "image": image, "imageID": i or ""} for n, image, i in items]

    return {
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": spec(containers), "initContainers": spec(init),
                 "ephemeralContainers": spec(ephemeral)},
        "status": {"containerStatuses": status(containers),
                   "initContainerStatuses": status(init),
                   "ephemeralContainerStatuses": status(ephemeral)},
    }  # fmt: skip


def owner(
    kind: str, name: str, parent: tuple[str, str] | None, namespace: str = "shop"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if parent:
        meta["ownerReferences"] = [{"kind": parent[0], "name": parent[1], "controller": True}]
    return {"kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    ("image_id", "digest", "resolvable", "repository"),
    [
        (f"registry.example/shop/api@{D1}", D1, True, "shop/api"),
        (f"docker-pullable://registry.example/shop/api@{D1}", D1, True, "shop/api"),
        (f"docker-pullable://nginx@{D1}", D1, True, "library/nginx"),
        (f"docker.io/library/nginx@{D1}", D1, True, "library/nginx"),
        (f"docker://{CONFIG}", None, False, None),
        (CONFIG, None, False, None),
        ("", None, False, None),
        (None, None, False, None),
        ("not a reference", None, False, None),
    ],
)
def test_image_id_forms(
    image_id: str | None, digest: str | None, resolvable: bool, repository: str | None
) -> None:
    read = parse_image_id(image_id)
    assert (read.digest, read.resolvable, read.repository) == (digest, resolvable, repository)


def test_a_config_digest_is_recorded_not_guessed_even_when_the_spec_names_a_tag() -> None:
    read = parse_image_id(f"docker://{CONFIG}", "registry.example/shop/api:1.0")
    assert read.digest is None and not read.resolvable


def test_a_pending_container_pinned_by_digest_resolves_from_its_spec() -> None:
    read = parse_image_id("", f"registry.example/shop/api@{D2}")
    assert read.digest == D2 and read.resolvable


def test_containers_init_and_ephemeral_are_all_read() -> None:
    api = "registry.example/shop/api"
    doc = [pod("web-1", None,
               containers=[("app", f"{api}:1", f"{api}@{D1}")],
               init=[("migrate", "registry.example/shop/db:1", f"docker-pullable://registry.example/shop/db@{D2}")],
               ephemeral=[("debug", "busybox", f"docker://{CONFIG}")])]  # fmt: skip
    found = {c.container: c for c in running_containers(doc)}
    assert found["app"].kind is ContainerKind.REGULAR and found["app"].digest == D1
    assert found["migrate"].kind is ContainerKind.INIT and found["migrate"].digest == D2
    assert found["debug"].kind is ContainerKind.EPHEMERAL
    assert found["debug"].digest is None and not found["debug"].resolvable
    assert found["debug"].image_id == f"docker://{CONFIG}"
    assert found["app"].workload == Workload("Pod", "web-1")


def test_deployment_through_the_replica_set_in_the_document() -> None:
    doc = [
        pod("api-7d9f-x", ("ReplicaSet", "api-7d9f"), [("app", "a", f"a@{D1}")]),
        owner("ReplicaSet", "api-7d9f", ("Deployment", "api")),
    ]
    assert running_containers(doc)[0].workload == Workload("Deployment", "api", inferred=False)


def test_deployment_inferred_from_the_pod_template_hash_without_replica_sets() -> None:
    doc = [pod("api-5f6d8c9b7-abcde", ("ReplicaSet", "api-5f6d8c9b7"), [("app", "a", f"a@{D1}")],
               labels={"pod-template-hash": "5f6d8c9b7"})]  # fmt: skip
    assert running_containers(doc)[0].workload == Workload("Deployment", "api", inferred=True)


def test_a_replica_set_not_named_by_the_hash_stays_a_replica_set() -> None:
    doc = [pod("p", ("ReplicaSet", "standalone"), [("app", "a", f"a@{D1}")],
               labels={"pod-template-hash": "5f6d8c9b7"})]  # fmt: skip
    assert running_containers(doc)[0].workload == Workload("ReplicaSet", "standalone")


def test_a_bare_replica_set_in_the_document_is_its_own_workload() -> None:
    doc = [
        pod("p", ("ReplicaSet", "rs"), [("app", "a", f"a@{D1}")]),
        owner("ReplicaSet", "rs", None),
    ]
    assert running_containers(doc)[0].workload == Workload("ReplicaSet", "rs")


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_direct_controllers(kind: str) -> None:
    doc = [pod("p-0", (kind, "db"), [("app", "a", f"a@{D1}")])]
    assert running_containers(doc)[0].workload == Workload(kind, "db")


def test_cron_job_through_its_job() -> None:
    doc = [
        pod("backup-2900-x", ("Job", "backup-2900"), [("app", "a", f"a@{D1}")]),
        owner("Job", "backup-2900", ("CronJob", "backup")),
    ]
    assert running_containers(doc)[0].workload == Workload("CronJob", "backup")


def test_a_job_without_its_object_stays_a_job() -> None:
    doc = [pod("once-x", ("Job", "once"), [("app", "a", f"a@{D1}")])]
    assert running_containers(doc)[0].workload == Workload("Job", "once")


def test_an_owner_in_another_namespace_is_not_taken() -> None:
    doc = [
        pod("api-x", ("ReplicaSet", "api-1"), [("app", "a", f"a@{D1}")]),
        owner("ReplicaSet", "api-1", ("Deployment", "other"), namespace="elsewhere"),
    ]
    assert running_containers(doc)[0].workload == Workload("ReplicaSet", "api-1")


def test_kubectl_list_documents_load() -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [pod("a", None, [("c", "i", None)])]}
    objects = load_document(json.dumps(listing).encode())
    assert [c.pod for c in running_containers(objects)] == ["a"]


@pytest.mark.parametrize("raw", [b"", b"[1, 2]", b"{not json", b'{"items": 3}'])
def test_bad_documents_are_clear_errors(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        load_document(raw)


def test_junk_inside_a_document_is_skipped_not_raised() -> None:
    objects = [{"kind": "Pod", "spec": {"containers": [None, {"image": "x"}, {"name": "ok"}]},
                "status": {"containerStatuses": "junk"}, "metadata": "junk"}]  # fmt: skip
    found = running_containers(objects)
    assert [(c.container, c.digest, c.resolvable) for c in found] == [("ok", None, False)]

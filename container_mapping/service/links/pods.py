"""What runs in a cluster, from `kubectl get pods -A -o json` or the cluster itself.

A pod's containers name their image as written in the spec (a tag, often moved since) and, once
pulled, the runtime's `imageID`. Only the latter can be joined with a pipeline run, and runtimes
write it in several forms:

- `registry/repo@sha256:…` (containerd, CRI-O): the manifest digest the registry served;
- `docker-pullable://registry/repo@sha256:…` (dockershim, cri-dockerd): the same, prefixed;
- `docker://sha256:…` or a bare `sha256:…`: the image *config* digest of a locally present
  image. It names no manifest, so it is recorded as unresolvable rather than guessed.

Workloads are named by their controller: a pod's ReplicaSet belongs to a Deployment, a Job to a
CronJob. When the document holds the ReplicaSets and Jobs (`kubectl get pods,replicasets,jobs
-A -o json`) the chain is read; otherwise a ReplicaSet named `<deployment>-<pod-template-hash>`
is taken for its Deployment and marked inferred.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from container_mapping.errors import ConfigError, InvalidReference
from container_mapping.reference import DIGEST_RE, ImageReference

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
MAX_CONTAINERS = 500_000
_PULLABLE = "docker-pullable://"
_DOCKER = "docker://"
_OWNER_KINDS = ("ReplicaSet", "Job")  # kinds whose own controller names the workload


class ContainerKind(str, enum.Enum):
    REGULAR = "regular"
    INIT = "init"
    EPHEMERAL = "ephemeral"


_SPEC_KEYS = {
    ContainerKind.REGULAR: ("containers", "containerStatuses"),
    ContainerKind.INIT: ("initContainers", "initContainerStatuses"),
    ContainerKind.EPHEMERAL: ("ephemeralContainers", "ephemeralContainerStatuses"),
}


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    inferred: bool = False


@dataclass(frozen=True)
class ImageId:
    """The runtime's `imageID`, read: a manifest digest, or why there is none."""

    digest: str | None
    resolvable: bool
    registry: str | None = None
    repository: str | None = None


@dataclass(frozen=True)
class RunningContainer:
    namespace: str
    pod: str
    workload: Workload
    container: str
    kind: ContainerKind
    image: str
    image_id: str | None
    digest: str | None
    resolvable: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "ownerKind": self.workload.kind,
            "ownerName": self.workload.name,
            "ownerInferred": self.workload.inferred,
            "container": self.container,
            "containerKind": self.kind.value,
            "image": self.image,
            "imageId": self.image_id,
            "digest": self.digest,
            "resolvable": self.resolvable,
        }


def parse_image_id(image_id: str | None, image: str = "") -> ImageId:
    """Read an `imageID` in every form runtimes write; a pinned `image` helps when it is empty."""
    text = (image_id or "").strip()
    for prefix in (_PULLABLE, _DOCKER):
        text = text.removeprefix(prefix)
    if DIGEST_RE.fullmatch(text):
        return ImageId(None, False)  # a config digest: no manifest to join on
    if "@" in text:
        return _from_reference(text)
    if not text and "@sha256:" in image:
        return _from_reference(image)  # not pulled yet, but pinned by digest in the spec
    return ImageId(None, False)


def _from_reference(text: str) -> ImageId:
    try:
        ref = ImageReference.parse(text)
    except InvalidReference:
        digest = text.rpartition("@")[2]
        return ImageId(digest, True) if DIGEST_RE.fullmatch(digest) else ImageId(None, False)
    return ImageId(ref.digest, ref.digest is not None, ref.registry, ref.repository)


def load_document(raw: bytes) -> list[dict[str, Any]]:
    """The objects of a kubectl JSON document: a `List`, a `PodList` or one object."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigError(f"the pod document is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError as err:
        raise ConfigError(
            f"the pod document is not JSON ({err}): give `kubectl get pods -A -o json`"
        ) from err
    if not isinstance(document, dict):
        raise ConfigError("the pod document is not a Kubernetes object or list")
    items = document.get("items") if "items" in document else [document]
    if not isinstance(items, list):
        raise ConfigError("the pod document's `items` is not a list")
    return [item for item in items if isinstance(item, dict)]


def running_containers(objects: Iterable[Mapping[str, Any]]) -> list[RunningContainer]:
    """Every container of every pod in `objects`, named by its workload."""
    objects = list(objects)
    owners = _owner_index(objects)
    found: list[RunningContainer] = []
    for obj in objects:
        if obj.get("kind", "Pod") != "Pod" or "spec" not in obj:
            continue
        found.extend(_pod_containers(obj, owners))
        if len(found) > MAX_CONTAINERS:
            raise ConfigError(f"more than {MAX_CONTAINERS} containers in one snapshot")
    return found


def owner_references_to_read(pods: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of the ReplicaSets and Jobs the pods' workloads run through."""
    wanted = set()
    for pod in pods:
        owner = _controller(pod)
        if owner and owner[0] in _OWNER_KINDS:
            wanted.add((owner[0], _meta(pod, "namespace"), owner[1]))
    return wanted


_OwnerIndex = Mapping[tuple[str, str, str], Mapping[str, Any]]


def _owner_index(objects: Iterable[Mapping[str, Any]]) -> _OwnerIndex:
    return {
        (str(o.get("kind")), _meta(o, "namespace"), _meta(o, "name")): o
        for o in objects
        if o.get("kind") in _OWNER_KINDS
    }


def _pod_containers(pod: Mapping[str, Any], owners: _OwnerIndex) -> Iterator[RunningContainer]:
    workload = _workload(pod, owners)
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    for kind, (spec_key, status_key) in _SPEC_KEYS.items():
        statuses = {
            str(s.get("name")): s for s in _list(status.get(status_key)) if isinstance(s, dict)
        }
        for container in _list(spec.get(spec_key)):
            if not isinstance(container, dict) or not container.get("name"):
                continue
            name = str(container["name"])
            yield _container(pod, workload, kind, container, statuses.get(name, {}))


def _container(
    pod: Mapping[str, Any],
    workload: Workload,
    kind: ContainerKind,
    container: Mapping[str, Any],
    status: Mapping[str, Any],
) -> RunningContainer:
    image = str(status.get("image") or container.get("image") or "")
    written = str(container.get("image") or image)
    raw_id = status.get("imageID") or None
    read = parse_image_id(str(raw_id) if raw_id else None, written)
    return RunningContainer(
        namespace=_meta(pod, "namespace"),
        pod=_meta(pod, "name"),
        workload=workload,
        container=str(container["name"]),
        kind=kind,
        image=written,
        image_id=str(raw_id) if raw_id else None,
        digest=read.digest,
        resolvable=read.resolvable,
    )


def _workload(pod: Mapping[str, Any], owners: _OwnerIndex) -> Workload:
    owner = _controller(pod)
    if owner is None:
        return Workload("Pod", _meta(pod, "name"))
    kind, name = owner
    if kind not in _OWNER_KINDS:
        return Workload(kind, name)
    parent = owners.get((kind, _meta(pod, "namespace"), name))
    if parent is not None:
        grand = _controller(parent)
        return Workload(*grand) if grand else Workload(kind, name)
    if kind == "ReplicaSet":
        return _inferred_deployment(pod, name)
    return Workload(kind, name)


def _inferred_deployment(pod: Mapping[str, Any], replica_set: str) -> Workload:
    """`<deployment>-<pod-template-hash>` is how the Deployment controller names its sets."""
    labels = _dict(_dict(pod.get("metadata")).get("labels"))
    template_hash = str(labels.get("pod-template-hash") or "")
    suffix = f"-{template_hash}"
    if template_hash and replica_set.endswith(suffix) and len(replica_set) > len(suffix):
        return Workload("Deployment", replica_set[: -len(suffix)], inferred=True)
    return Workload("ReplicaSet", replica_set)


def _controller(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    refs = [r for r in _list(_dict(obj.get("metadata")).get("ownerReferences")) if _is_ref(r)]
    chosen = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return (str(chosen["kind"]), str(chosen["name"])) if chosen else None


def _is_ref(value: object) -> bool:
    return isinstance(value, dict) and bool(value.get("kind")) and bool(value.get("name"))


def _meta(obj: Mapping[str, Any], key: str) -> str:
    return str(_dict(obj.get("metadata")).get(key) or "")


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []

"""Read a cluster live through the kubernetes client: its pods, and the owners they run through.

The result is the same list of objects `kubectl get pods,replicasets,jobs -A -o json` gives, so
one parser serves the file and the live cluster: the API's JSON is read as it comes
(`_preload_content=False`), not through the client's models, which refuse objects a newer API
server shapes differently. Pods are listed in pages; only the ReplicaSets and Jobs the pods name
are read (one call each), never every ReplicaSet of the cluster.
"""

from __future__ import annotations

import json
from typing import Any

from container_mapping.errors import ConfigError, Error
from container_mapping.service.links.pods import owner_references_to_read

REQUEST_TIMEOUT = 30
PAGE = 500
MAX_PAGES = 1000


def read_cluster(context: str | None) -> list[dict[str, Any]]:
    """Pods of every namespace, then the ReplicaSets and Jobs they belong to."""
    try:
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config.config_exception import ConfigException
        from urllib3.exceptions import HTTPError
    except ImportError as err:
        raise ConfigError(
            "reading a cluster needs the kubernetes client: "
            "pip install 'container-mapping[service]'"
        ) from err
    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            context=context, persist_config=False
        )
    except (ConfigException, OSError) as err:
        raise ConfigError(f"no usable kubeconfig context {context!r}: {err}") from err
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    readers = {
        "ReplicaSet": apps.read_namespaced_replica_set,
        "Job": batch.read_namespaced_job,
    }
    try:
        objects = [dict(p, kind="Pod") for p in _all_pods(core)]
        for kind, namespace, name in sorted(owner_references_to_read(objects)):
            owner = _read_owner(readers[kind], namespace, name, ApiException)
            if owner is not None:
                objects.append(dict(owner, kind=kind))
    except ApiException as err:
        raise Error(f"the cluster refused to list pods (HTTP {err.status}): {err.reason}") from err
    except (OSError, HTTPError) as err:
        raise Error(
            f"could not reach the cluster of context {context!r} ({type(err).__name__}): check "
            "the kubeconfig's server and network"
        ) from err
    return objects


def _all_pods(core: Any) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = []
    token = None
    for _ in range(MAX_PAGES):
        page = _json(
            core.list_pod_for_all_namespaces(
                limit=PAGE, _continue=token, _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )  # fmt: skip
        pods.extend(p for p in page.get("items") or [] if isinstance(p, dict))
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return pods
    raise Error(f"more than {MAX_PAGES * PAGE} pods: read the cluster with a file instead")


def _read_owner(
    read: Any, namespace: str, name: str, api_exception: type[Exception]
) -> dict[str, Any] | None:
    try:
        return _json(
            read(name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        )
    except api_exception:
        return None  # gone since, or not readable: the pod's own owner reference still names it


def _json(response: Any) -> dict[str, Any]:
    """The API's own JSON, as kubectl prints it."""
    try:
        data = json.loads(response.data)
    except ValueError as err:
        raise Error("the cluster answered something that is not JSON") from err
    return data if isinstance(data, dict) else {}

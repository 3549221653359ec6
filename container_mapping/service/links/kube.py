"""Read a cluster live through the kubernetes client: its pods, and the owners they run through.

The result is the same list of objects `kubectl get pods,replicasets,jobs -A -o json` gives, so
one parser serves the file and the live cluster. Only the ReplicaSets and Jobs the pods name are
read (one call each), never every ReplicaSet of the cluster.
"""

from __future__ import annotations

from typing import Any

from container_mapping.errors import ConfigError, Error
from container_mapping.service.links.pods import owner_references_to_read

REQUEST_TIMEOUT = 30


def read_cluster(context: str | None) -> list[dict[str, Any]]:
    """Pods of every namespace, then the ReplicaSets and Jobs they belong to."""
    try:
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config.config_exception import ConfigException
    except ImportError as err:
        raise ConfigError(
            "reading a cluster needs the kubernetes client: "
            "pip install 'container-mapping[service]'"
        ) from err
    try:
        api = config.new_client_from_config(context=context)
    except (ConfigException, OSError) as err:
        raise ConfigError(f"no usable kubeconfig context {context!r}: {err}") from err
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    readers = {
        "ReplicaSet": apps.read_namespaced_replica_set,
        "Job": batch.read_namespaced_job,
    }
    try:
        pods = _plain(api, core.list_pod_for_all_namespaces(_request_timeout=REQUEST_TIMEOUT))
        objects = [dict(p, kind="Pod") for p in pods.get("items", [])]
        for kind, namespace, name in sorted(owner_references_to_read(objects)):
            owner = _read_owner(api, readers[kind], namespace, name, ApiException)
            if owner is not None:
                objects.append(dict(owner, kind=kind))
    except ApiException as err:
        raise Error(f"the cluster refused to list pods (HTTP {err.status}): {err.reason}") from err
    except OSError as err:
        raise Error(f"could not reach the cluster of context {context!r}: {err}") from err
    return objects


def _read_owner(
    api: Any, read: Any, namespace: str, name: str, api_exception: type[Exception]
) -> dict[str, Any] | None:
    try:
        return _plain(api, read(name, namespace, _request_timeout=REQUEST_TIMEOUT))
    except api_exception:
        return None  # gone since, or not readable: the pod's own owner reference still names it


def _plain(api: Any, obj: Any) -> dict[str, Any]:
    """The object as the API's JSON (camelCase keys), as kubectl prints it."""
    data = api.sanitize_for_serialization(obj)
    return data if isinstance(data, dict) else {}

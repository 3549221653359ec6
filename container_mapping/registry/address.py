"""Where a registry's API is, and whether it is spoken over plain HTTP.

Docker's own rules, so that whatever the engine could push to is asked the same way: Docker
Hub's API is not served by `docker.io`, loopback registries are insecure, and everything else
needs TLS unless listed (the daemon's `insecure-registries`; our environment variable here).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping

from container_mapping.credentials import HUB_REGISTRY, registry_host

INSECURE_ENV = "CONTAINER_MAPPING_INSECURE_REGISTRIES"
HUB_API_HOST = "registry-1.docker.io"


def api_host(registry: str) -> str:
    """The host that serves a registry's API: Docker Hub's is not `docker.io`."""
    return HUB_API_HOST if registry == HUB_REGISTRY else registry


def uses_plain_http(registry: str, environ: Mapping[str, str]) -> bool:
    """Loopback registries and those listed in `CONTAINER_MAPPING_INSECURE_REGISTRIES`."""
    host = urllib.parse.urlsplit(f"//{registry}").hostname or ""
    if _is_loopback(host):
        return True
    listed = {registry_host(e).lower() for e in environ.get(INSECURE_ENV, "").split(",")}
    return registry.lower() in listed or host in listed


def base_url(registry: str, environ: Mapping[str, str]) -> str:
    """`scheme://host` of a registry's API, for `/v2/...` paths to be appended to."""
    scheme = "http" if uses_plain_http(registry, environ) else "https"
    return f"{scheme}://{api_host(registry)}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Ask a registry which manifest digest a tag points at, and check pushed records against it.

`address` says where a registry's API is and whether it speaks plain HTTP, `auth` answers its
401 challenges (Basic, or a token from its token service), `client` resolves a tag to a digest,
`verify` marks records verified, mismatched or unavailable. The names other modules use are
importable from here.
"""

from __future__ import annotations

from container_mapping.registry.address import (
    HUB_API_HOST,
    INSECURE_ENV,
    api_host,
    base_url,
    uses_plain_http,
)
from container_mapping.registry.auth import (
    Challenge,
    RegistryAuth,
    TokenRequest,
    parse_challenges,
    pull_scope,
)
from container_mapping.registry.client import ACCEPT, MANIFEST_TYPES, RegistryClient
from container_mapping.registry.verify import DigestSource, verify_records

__all__ = [
    "ACCEPT",
    "HUB_API_HOST",
    "INSECURE_ENV",
    "MANIFEST_TYPES",
    "Challenge",
    "DigestSource",
    "RegistryAuth",
    "RegistryClient",
    "TokenRequest",
    "api_host",
    "base_url",
    "parse_challenges",
    "pull_scope",
    "uses_plain_http",
    "verify_records",
]

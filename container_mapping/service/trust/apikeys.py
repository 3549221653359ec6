"""API keys: the configuration holds each key's SHA-256, a presented key is hashed and compared.

Every configured hash is compared with `hmac.compare_digest`, all of them on every call, so the
time taken says nothing about how close a guess came or which organization holds a key.
"""

from __future__ import annotations

import hashlib
import hmac

from container_mapping.service.config import Settings
from container_mapping.service.trust.models import ApiCaller


def caller_for_key(settings: Settings, key: str) -> ApiCaller | None:
    """The organization and key a presented key belongs to, or None."""
    presented = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    found: ApiCaller | None = None
    for org in settings.organizations:
        for api_key in org.api_keys:
            if hmac.compare_digest(presented, api_key.sha256) and found is None:
                found = ApiCaller(org.id, api_key.name, api_key.scopes)
    return found

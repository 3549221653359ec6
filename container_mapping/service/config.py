"""The service's settings: a YAML file, environment variables over it, an embedded default.

With nothing configured the service listens on 127.0.0.1:8080 and keeps a SQLite file in the
current directory, so one command runs it. Every value is checked here, once, and a bad one is a
`ConfigError` naming its key: a typo in an issuer must stop the service at start, not open it to
tokens it should refuse.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from container_mapping.errors import ConfigError

DEFAULT_DATABASE = "sqlite:///./mappings.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
ISSUER_TEMPLATE = "https://vstoken.dev.azure.com/{id}"
SCOPES = frozenset({"read", "link"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LISTEN = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class ApiKey:
    """An API key as configured: its name, the SHA-256 of the key (never the key), its scopes."""

    name: str
    sha256: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Organization:
    """An Azure DevOps organization whose jobs may report here and whose keys may read."""

    name: str
    id: str
    issuer: str
    audience: str = DEFAULT_AUDIENCE
    api_keys: tuple[ApiKey, ...] = ()


@dataclass(frozen=True)
class TrustSettings:
    """How tokens are checked: clock leeway and how often the key set may be fetched."""

    leeway: float = 60.0
    jwks_refresh_interval: float = 60.0  # at most one fetch per this many seconds on unknown kid
    jwks_max_age: float = 3600.0  # known keys are fetched again after this long
    http_timeout: float = 5.0
    retry_after: int = 30  # seconds the 503 of an unreachable key set asks the caller to wait


@dataclass(frozen=True)
class Settings:
    database: str = DEFAULT_DATABASE
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body: int = DEFAULT_MAX_BODY
    workers: int = 1
    organizations: tuple[Organization, ...] = ()
    trust: TrustSettings = field(default_factory=TrustSettings)
    migrate: bool = True  # run the migrations when the app starts

    def organization(self, org_id: str) -> Organization | None:
        wanted = org_id.lower()
        return next((o for o in self.organizations if o.id == wanted), None)


def load(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path` (or `$CONTAINER_MAPPING_CONFIG`), then environment variables."""
    env = os.environ if environ is None else environ
    path = path or env.get("CONTAINER_MAPPING_CONFIG") or None
    data = _read_yaml(Path(path)) if path else {}
    overrides = {
        "database": env.get("CONTAINER_MAPPING_DATABASE"),
        "listen": env.get("CONTAINER_MAPPING_LISTEN"),
        "max_body": env.get("CONTAINER_MAPPING_MAX_BODY"),
        "workers": env.get("CONTAINER_MAPPING_WORKERS"),
    }
    data.update({k: v for k, v in overrides.items() if v})
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> Settings:
    """Check a parsed configuration document; `ConfigError` names the first bad key."""
    unknown = set(data) - {"database", "listen", "max_body", "workers", "organizations", "trust"}
    if unknown:
        raise ConfigError(f"unknown configuration key {sorted(unknown)[0]!r}")
    host, port = _listen(data.get("listen", f"{DEFAULT_HOST}:{DEFAULT_PORT}"))
    organizations = tuple(
        _organization(item, f"organizations[{i}]")
        for i, item in enumerate(_list(data.get("organizations"), "organizations"))
    )
    _check_unique(organizations)
    return Settings(
        database=_database(data.get("database", DEFAULT_DATABASE)),
        host=host,
        port=port,
        max_body=_positive_int(data.get("max_body", DEFAULT_MAX_BODY), "max_body"),
        workers=_positive_int(data.get("workers", 1), "workers"),
        organizations=organizations,
        trust=_trust(data.get("trust") or {}),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read the configuration file {path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"the configuration file {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the configuration file {path} must hold a mapping of keys")
    return dict(data)


def _database(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("database: expected a URL such as sqlite:///./mappings.db")
    scheme = value.split(":", 1)[0]
    if scheme not in ("sqlite", "postgresql+psycopg"):
        raise ConfigError(
            f"database: unsupported scheme {scheme!r}; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        )
    return value.strip()


def _listen(value: Any) -> tuple[str, int]:
    match = _LISTEN.fullmatch(str(value).strip())
    if not match or not 0 <= int(match["port"]) <= 65535:
        raise ConfigError(f"listen: expected HOST:PORT such as 127.0.0.1:8080, not {value!r}")
    return match["host"].strip("[]"), int(match["port"])


def _positive_int(value: Any, key: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ConfigError(f"{key}: expected a positive whole number, not {value!r}")
    return number


def _positive_float(value: Any, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise ConfigError(f"{key}: expected a number of seconds, not {value!r}")
    return number


def _list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list")
    return value


def _text(item: Mapping[str, Any], name: str, key: str, default: str | None = None) -> str:
    value = item.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}: expected a non-empty string")
    return value.strip()


def _organization(item: Any, key: str) -> Organization:
    if not isinstance(item, dict):
        raise ConfigError(f"{key}: expected a mapping with name and id")
    unknown = set(item) - {"name", "id", "issuer", "audience", "api_keys"}
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}: unknown key")
    try:
        org_id = str(uuid.UUID(_text(item, "id", key)))
    except ValueError as err:
        raise ConfigError(f"{key}.id: expected the organization's GUID (the org_id claim)") from err
    issuer = _issuer(_text(item, "issuer", key, ISSUER_TEMPLATE.format(id=org_id)), key)
    keys = tuple(
        _api_key(k, f"{key}.api_keys[{i}]")
        for i, k in enumerate(_list(item.get("api_keys"), f"{key}.api_keys"))
    )
    return Organization(
        name=_text(item, "name", key),
        id=org_id,
        issuer=issuer,
        audience=_text(item, "audience", key, DEFAULT_AUDIENCE),
        api_keys=keys,
    )


def _issuer(value: str, key: str) -> str:
    url = urllib.parse.urlsplit(value)
    if url.scheme == "https" and url.hostname:
        return value.rstrip("/")
    if url.scheme == "http" and url.hostname and is_loopback(url.hostname):
        return value.rstrip("/")
    raise ConfigError(
        f"{key}.issuer: {value!r} must be an https:// URL (http:// only on a loopback host)"
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _api_key(item: Any, key: str) -> ApiKey:
    if not isinstance(item, dict):
        raise ConfigError(f"{key}: expected a mapping with name, sha256 and scopes")
    digest = _text(item, "sha256", key).lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ConfigError(f"{key}.sha256: expected 64 hex digits (the SHA-256 of the key)")
    scopes = item.get("scopes", ["read"])
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= SCOPES:
        raise ConfigError(f"{key}.scopes: expected a list of {', '.join(sorted(SCOPES))}")
    return ApiKey(name=_text(item, "name", key), sha256=digest, scopes=frozenset(scopes))


def _check_unique(organizations: tuple[Organization, ...]) -> None:
    seen: set[str] = set()
    for i, org in enumerate(organizations):
        for what, value in (("id", org.id), ("name", org.name)):
            if f"{what}:{value}" in seen:
                raise ConfigError(f"organizations[{i}].{what}: {value!r} is configured twice")
            seen.add(f"{what}:{value}")
        for j, api_key in enumerate(org.api_keys):
            if f"key:{api_key.sha256}" in seen:
                raise ConfigError(
                    f"organizations[{i}].api_keys[{j}].sha256: the same key is configured twice; "
                    "a key belongs to one organization"
                )
            seen.add(f"key:{api_key.sha256}")


def _trust(item: Any) -> TrustSettings:
    if not isinstance(item, dict):
        raise ConfigError("trust: expected a mapping")
    names = {
        "leeway": "leeway",
        "jwks_refresh_interval": "jwks_refresh_interval",
        "jwks_max_age": "jwks_max_age",
        "http_timeout": "http_timeout",
    }
    unknown = set(item) - set(names) - {"retry_after"}
    if unknown:
        raise ConfigError(f"trust.{sorted(unknown)[0]}: unknown key")
    values: dict[str, Any] = {
        n: _positive_float(item[k], f"trust.{k}") for k, n in names.items() if k in item
    }
    if "retry_after" in item:
        values["retry_after"] = _positive_int(item["retry_after"], "trust.retry_after")
    return TrustSettings(**values)


def hash_key(key: str) -> str:
    """The SHA-256 hex of an API key: what the configuration holds instead of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()

"""A configuration's state: its identity, what it installs, the `--all --future` choice, and
each organization's last outcome.

One small JSON file per configuration under `$CONTAINER_MAPPING_STATE_DIR` (default
`~/.config/container-mapping/`), `onboard/<name>.json`, written whole to a temporary file and
renamed, mode 0600. It holds names, URLs, versions and outcomes: never a credential. A nightly
pipeline keeps it as a pipeline artifact or on a share, or simply starts over: the claim on each
organization (see `marker`) is what refuses a second configuration, and the steps are idempotent.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from container_mapping.azdo.onboard.model import Extension, Outcome, Status, version_key
from container_mapping.errors import ConfigError

SCHEMA = 1
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def state_dir() -> Path:
    configured = os.environ.get("CONTAINER_MAPPING_STATE_DIR", "").strip()
    return Path(configured) if configured else Path.home() / ".config" / "container-mapping"


@dataclass(frozen=True)
class State:
    name: str
    id: str
    extension: Extension | None = None
    future: bool = False  # --all --future: `onboard sync` brings in new organizations
    all_organizations: bool = False
    accounts_url: str = ""
    org_url: str = ""
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def done_at(self, org: str, wanted: Extension) -> bool:
        entry = self.organizations.get(org, {})
        return (
            entry.get("status") == Status.DONE.value
            and version_key(entry.get("version")) >= wanted.key
            and entry.get("extension") == f"{wanted.publisher}.{wanted.name}"
        )

    def with_outcome(self, outcome: Outcome, wanted: Extension) -> State:
        entry = {
            "url": outcome.url,
            "status": outcome.status.value,
            "extension": f"{wanted.publisher}.{wanted.name}",
            "version": outcome.installed_version,
            "projects": outcome.projects,
            "repositories": outcome.repositories,
            "cause": outcome.cause,
            "fix": outcome.fix,
            "at": now(),
        }
        return replace(self, organizations={**self.organizations, outcome.organization: entry})

    def to_dict(self) -> dict[str, Any]:
        ext = self.extension
        return {
            "schema": SCHEMA,
            "configuration": {"name": self.name, "id": self.id},
            "extension": None
            if ext is None
            else {"publisher": ext.publisher, "name": ext.name, "version": ext.version},
            "selection": {
                "all": self.all_organizations,
                "future": self.future,
                "accountsUrl": self.accounts_url,
                "orgUrl": self.org_url,
            },
            "organizations": self.organizations,
        }


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def path_for(name: str) -> Path:
    if not _CONFIG_NAME.match(name):
        raise ConfigError(
            f"--config-name {name!r}: use letters, digits, '.', '_' or '-' (up to 64)"
        )
    return state_dir() / "onboard" / f"{name}.json"


def load(name: str) -> State:
    """The configuration's state; a new one (with a new id) when there is none yet."""
    path = path_for(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State(name=name, id=str(uuid.uuid4()))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"state file {path} is unreadable ({type(err).__name__}): fix or remove it"
        ) from None
    return _parse(data, name, path)


def _parse(data: Any, name: str, path: Path) -> State:
    try:
        if data["schema"] != SCHEMA:
            raise ConfigError(f"state file {path} has schema {data['schema']}, not {SCHEMA}")
        ext = data.get("extension")
        selection = data.get("selection") or {}
        return State(
            name=name,
            id=str(data["configuration"]["id"]),
            extension=Extension(ext["publisher"], ext["name"], ext["version"]) if ext else None,
            future=bool(selection.get("future")),
            all_organizations=bool(selection.get("all")),
            accounts_url=str(selection.get("accountsUrl") or ""),
            org_url=str(selection.get("orgUrl") or ""),
            organizations=dict(data.get("organizations") or {}),
        )
    except (KeyError, TypeError) as err:
        raise ConfigError(f"state file {path} is malformed ({err}): fix or remove it") from None


def save(state: State) -> Path:
    path = path_for(state.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(state.to_dict(), out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path

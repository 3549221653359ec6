"""The onboarding domain: what is wanted, which organizations, and what happened to each.

Frozen dataclasses, so a step's outcome cannot be changed after it is reported; the state file
and the `--json` output are built from `to_dict` and nowhere else.
"""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from container_mapping.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


class Status(str, enum.Enum):
    DONE = "done"  # prerequisites met, extension shared and installed at the wanted version
    WOULD_CHANGE = "would-change"  # dry run: something would be done
    FAILED = "failed"  # a prerequisite or a call failed: `cause` and `fix` say why
    REFUSED = "refused"  # another configuration has claimed the organization
    SKIPPED = "skipped"  # done earlier at the wanted version (state file)
    DISABLED = "disabled"  # installed but disabled: left as found (`--enable` changes that)
    OFFBOARDED = "offboarded"


@dataclass(frozen=True)
class Extension:
    publisher: str
    name: str
    version: str

    def __post_init__(self) -> None:
        for label, value in (("publisher", self.publisher), ("extension", self.name)):
            if not _NAME.match(value):
                raise ConfigError(f"--{label} {value!r} is not a Marketplace name")
        if not _VERSION.match(self.version):
            raise ConfigError(f"--version {self.version!r} is not a version like 1.2.3")

    @property
    def key(self) -> tuple[int, ...]:
        return version_key(self.version)


def version_key(version: str | None) -> tuple[int, ...]:
    """A comparable form of `1.2.10`; anything unreadable sorts first (older than all)."""
    if not version or not _VERSION.match(version):
        return ()
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class Target:
    """One organization: its name (the state's key) and the URL the SDK starts from."""

    name: str
    url: str


@dataclass(frozen=True)
class Check:
    """One prerequisite of one organization, as printed in the prerequisites table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    advisory: bool = False  # reported, never blocking


@dataclass(frozen=True)
class Outcome:
    organization: str
    url: str
    status: Status
    actions: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    projects: int | None = None
    repositories: int | None = None
    installed_version: str | None = None
    cause: str = ""
    fix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["actions"] = list(self.actions)
        data["checks"] = [asdict(check) for check in self.checks]
        data.pop("extra")
        return data

"""The claim a configuration puts on an organization, so that no second one onboards it.

A configuration is a name plus an id made when its state file is first written. Its state file
says which organizations it onboarded, but only the organization itself can tell a second
configuration (another machine, another operator, a lost state file) that it is taken. The claim
is a collection-wide settings entry (Settings route, user scope `host`, in the SDK as
`SettingsClient`): readable by every member, writable by collection administrators, the same on
Azure DevOps Services and Server, and independent of the extension, which an administrator may
uninstall or disable by hand. Extension data documents would also work, but the SDK has no
client for their routes and they are meant for the extension's own code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from container_mapping.azdo.onboard.failures import ServiceError
from container_mapping.azdo.onboard.model import Target
from container_mapping.azdo.onboard.session import Connections

KEY = "ContainerMapping.Onboarding"
SCOPE = "host"  # all users of the collection, not the caller's own settings


@dataclass(frozen=True)
class Claim:
    configuration: str
    id: str
    since: str

    def to_dict(self) -> dict[str, str]:
        return {"configuration": self.configuration, "id": self.id, "since": self.since}


def read(connections: Connections, target: Target) -> Claim | None:
    settings = connections.settings_client(target.url)
    try:
        entries = connections.call(
            lambda: settings.get_entries(SCOPE, KEY),
            "reading the onboarding claim",
            target.name,
        )
    except ServiceError as err:
        if err.status_code == 404:
            return None
        raise
    value: Any = (entries or {}).get(KEY)
    if not isinstance(value, dict) or not value.get("id"):
        return None
    return Claim(str(value.get("configuration", "")), str(value["id"]), str(value.get("since", "")))


def refusal(claim: Claim, target: Target, own_name: str) -> tuple[str, str]:
    """Cause and fix when another configuration holds the organization."""
    cause = (
        f"{target.name} is already onboarded by configuration {claim.configuration!r} "
        f"(id {claim.id}, since {claim.since}); one organization is onboarded once"
    )
    if claim.configuration == own_name:  # same name, another state file (machine, operator)
        return cause, (
            "run where that configuration's state file is (it holds the id), or offboard it "
            "there first"
        )
    return cause, (
        f"run from that configuration (--config-name {claim.configuration}), or offboard it "
        "there first"
    )


def put(connections: Connections, target: Target, claim: Claim) -> None:
    settings = connections.settings_client(target.url)
    connections.write(
        lambda: settings.set_entries({KEY: claim.to_dict()}, SCOPE),
        "writing the onboarding claim",
        target.name,
    )


def remove(connections: Connections, target: Target) -> None:
    settings = connections.settings_client(target.url)
    connections.write(
        lambda: settings.remove_entries(SCOPE, KEY),
        "removing the onboarding claim",
        target.name,
    )

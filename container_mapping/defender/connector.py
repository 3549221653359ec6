"""The Azure DevOps security connector and its DevOps configuration, created or updated in ARM.

Two resources, as Defender for Cloud's portal makes them: the connector (environment
`AzureDevOps`, offering `CspmMonitorAzureDevOps`, api-version 2023-10-01-preview) and its
`devops/default` configuration (api-version 2024-04-01), a long-running operation followed to
its end. `autoDiscovery: Enabled` covers every existing and future organization; `Disabled` with
`topLevelInventoryList` covers the ones named. Updating keeps the connector's hierarchy
identifier, which Defender uses to tie findings to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from container_mapping.defender.arm import explained
from container_mapping.errors import ConfigError

ENVIRONMENT = "AzureDevOps"
OFFERING = "CspmMonitorAzureDevOps"


@dataclass(frozen=True)
class Target:
    subscription: str
    resource_group: str
    name: str
    location: str


@dataclass(frozen=True)
class Selection:
    """Every organization, now and later; or the ones named."""

    organizations: tuple[str, ...] = ()

    @property
    def all_future(self) -> bool:
        return not self.organizations

    @classmethod
    def parse(cls, all_future: bool, organizations: str | None) -> Selection:
        names = tuple(
            dict.fromkeys(o.strip() for o in (organizations or "").split(",") if o.strip())
        )
        if all_future == bool(names):
            raise ConfigError("give --all-future or --organizations a,b (one of them)")
        return cls(names)


@dataclass(frozen=True)
class Connected:
    connector_id: str
    hierarchy_identifier: str
    created: bool
    provisioning_state: str | None
    auto_discovery: str | None
    organizations: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "connectorId": self.connector_id,
            "hierarchyIdentifier": self.hierarchy_identifier,
            "created": self.created,
            "provisioningState": self.provisioning_state,
            "autoDiscovery": self.auto_discovery,
            "organizations": list(self.organizations),
        }


def connect(
    client: Any, target: Target, selection: Selection, authorization_code: str | None = None
) -> Connected:
    """Create or update the connector, then its DevOps configuration, waiting for the latter."""
    existing = _existing(client, target)
    hierarchy = (existing.hierarchy_identifier if existing else None) or str(uuid.uuid4())
    with explained(f"creating security connector {target.name}", target.subscription):
        connector = client.security_connectors.create_or_update(
            target.resource_group, target.name, _connector(target, hierarchy)
        )
    with explained(f"configuring DevOps for connector {target.name}", target.subscription):
        poller = client.dev_ops_configurations.begin_create_or_update(
            target.resource_group, target.name, _configuration(selection, authorization_code)
        )
        configuration = poller.result()
    props = configuration.properties
    return Connected(
        connector_id=connector.id or "",
        hierarchy_identifier=connector.hierarchy_identifier or hierarchy,
        created=existing is None,
        provisioning_state=getattr(props, "provisioning_state", None),
        auto_discovery=getattr(props, "auto_discovery", None),
        organizations=tuple(getattr(props, "top_level_inventory_list", None) or ()),
    )


def _existing(client: Any, target: Target) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    with explained(f"reading security connector {target.name}", target.subscription):
        try:
            return client.security_connectors.get(target.resource_group, target.name)
        except ResourceNotFoundError:
            return None


def _connector(target: Target, hierarchy: str) -> Any:
    from azure.mgmt.security.v2023_10_01_preview.models import (
        AzureDevOpsScopeEnvironmentData,
        CspmMonitorAzureDevOpsOffering,
        SecurityConnector,
    )

    return SecurityConnector(
        location=target.location,
        hierarchy_identifier=hierarchy,
        environment_name=ENVIRONMENT,
        environment_data=AzureDevOpsScopeEnvironmentData(),
        offerings=[CspmMonitorAzureDevOpsOffering()],
    )


def _configuration(selection: Selection, authorization_code: str | None) -> Any:
    from azure.mgmt.security.v2024_04_01.models import (
        Authorization,
        DevOpsConfiguration,
        DevOpsConfigurationProperties,
    )

    props = DevOpsConfigurationProperties(
        auto_discovery="Enabled" if selection.all_future else "Disabled",
        top_level_inventory_list=None if selection.all_future else list(selection.organizations),
        authorization=Authorization(code=authorization_code) if authorization_code else None,
    )
    return DevOpsConfiguration(properties=props)

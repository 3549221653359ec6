"""What the Azure DevOps connector covers: organizations, their projects, their repositories.

Each level is a paged ARM collection (`nextLink`), which the SDK's pager follows to the end. The
onboarding state says whether Defender reads the item through this connector
(`Onboarded`), through another one (`OnboardedByOtherConnector`, and an organization can be
onboarded only once per tenant), or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from container_mapping.defender.arm import explained
from container_mapping.defender.connector import Target


@dataclass(frozen=True)
class Item:
    kind: str  # organization | project | repository
    organization: str
    project: str | None
    repository: str | None
    onboarding_state: str | None
    provisioning_state: str | None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "organization": self.organization,
            "project": self.project,
            "repository": self.repository,
            "onboardingState": self.onboarding_state,
            "provisioningState": self.provisioning_state,
            "url": self.url,
        }


def inventory(client: Any, target: Target) -> list[Item]:
    """Every organization, project and repository of the connector, parents first."""
    return list(_walk(client, target))


def _walk(client: Any, target: Target) -> Iterator[Item]:
    rg, name = target.resource_group, target.name
    with explained(f"listing the organizations of connector {name}", target.subscription):
        orgs = list(client.azure_dev_ops_orgs.list(rg, name))
    for org in orgs:
        yield _item("organization", org, org.name, None, None)
        with explained(f"listing the projects of {org.name}", target.subscription):
            projects = list(client.azure_dev_ops_projects.list(rg, name, org.name))
        for project in projects:
            yield _item("project", project, org.name, project.name, None)
            with explained(f"listing the repositories of {org.name}/{project.name}"):
                repos = list(client.azure_dev_ops_repos.list(rg, name, org.name, project.name))
            for repo in repos:
                yield _item("repository", repo, org.name, project.name, repo.name)


def _item(kind: str, resource: Any, org: str, project: str | None, repo: str | None) -> Item:
    props = resource.properties
    return Item(
        kind=kind,
        organization=org,
        project=project,
        repository=repo,
        onboarding_state=getattr(props, "onboarding_state", None),
        provisioning_state=getattr(props, "provisioning_state", None),
        url=getattr(props, "repo_url", None),
    )

"""Prerequisites of one organization, each read from the service, none guessed.

- Project Collection Administrator: the group's exact membership, walked up through nested
  groups (the graph answers direct memberships only), not a permission bit.
- Access level: Basic or Basic + Test Plans from the user's entitlement (Stakeholder cannot
  install extensions).
- "Third-party application access via OAuth": there is no API, so it is read the way the portal
  reads it; the answer is advisory and never blocks on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from container_mapping.azdo.onboard.failures import ServiceError
from container_mapping.azdo.onboard.model import Check, Target
from container_mapping.azdo.onboard.session import Connections

logger = logging.getLogger(__name__)

PCA_SUFFIX = "\\project collection administrators"
MAX_GROUPS_VISITED = 1000
ENOUGH_ACCESS = {"express": "Basic", "advanced": "Basic + Test Plans"}
POLICY_PROVIDER = "ms.vss-admin-web.organization-policies-data-provider"
OAUTH_POLICY = "Policy.DisallowOAuthAuthentication"


@dataclass(frozen=True)
class Caller:
    id: str
    descriptor: str
    name: str


def caller(connections: Connections, target: Target) -> Caller:
    location = connections.location_client(target.url)
    data = connections.call(location.get_connection_data, "reading who is signed in", target.name)
    user = data.authenticated_user
    return Caller(
        str(user.id), str(user.subject_descriptor or ""), user.provider_display_name or ""
    )


def prerequisites(connections: Connections, target: Target, me: Caller) -> tuple[Check, ...]:
    return (
        administrator(connections, target, me),
        access_level(connections, target, me),
        oauth_policy(connections, target),
    )


def administrator(connections: Connections, target: Target, me: Caller) -> Check:
    graph = connections.client(target.url, "get_graph_client")
    group = _collection_admins(connections, graph, target.name)
    fix = (
        f"add {me.name or 'the caller'} to [{target.name}]\\Project Collection Administrators "
        "(Organization settings > Permissions)"
    )
    if group is None:
        return Check("Project Collection Administrator", False, "group not visible", fix)
    if _member_of(connections, graph, me.descriptor, group, target.name):
        return Check("Project Collection Administrator", True, "member (nested groups walked)")
    return Check("Project Collection Administrator", False, "not a member", fix)


def _collection_admins(connections: Connections, graph: Any, org: str) -> str | None:
    token: str | None = None
    while True:
        page = connections.call(
            partial(graph.list_groups, continuation_token=token), "listing groups", org
        )
        for group in page.graph_groups or []:
            if (group.principal_name or "").lower().endswith(PCA_SUFFIX):
                return str(group.descriptor)
        token = page.continuation_token
        if not token:
            return None


def _member_of(connections: Connections, graph: Any, descriptor: str, group: str, org: str) -> bool:
    """Walk memberships upward, breadth first, each group once."""
    seen, frontier = {descriptor}, [descriptor]
    while frontier and len(seen) < MAX_GROUPS_VISITED:
        subject = frontier.pop(0)
        ups = connections.call(
            partial(graph.list_memberships, subject, direction="up", depth=1),
            "reading group memberships",
            org,
        )
        for membership in ups or []:
            container = str(membership.container_descriptor)
            if container == group:
                return True
            if container not in seen:
                seen.add(container)
                frontier.append(container)
    return False


def access_level(connections: Connections, target: Target, me: Caller) -> Check:
    entitlement = _entitlement(connections, target, me)
    level = entitlement.access_level
    kind = (level.account_license_type or "").lower() if level else ""
    shown = (level.license_display_name if level else None) or kind or "unknown"
    if kind in ENOUGH_ACCESS:
        return Check("Access level", True, shown)
    return Check(
        "Access level",
        False,
        shown,
        "assign Basic (or Basic + Test Plans) access to the caller in Organization settings > "
        "Users; Stakeholder cannot install extensions",
    )


def _entitlement(connections: Connections, target: Target, me: Caller) -> Any:
    """A user's entitlement, or a service principal's (a pipeline's workload identity)."""
    entitlements = connections.client(target.url, "get_member_entitlement_management_client")
    try:
        return connections.call(
            partial(entitlements.get_user_entitlement, me.id), "reading the access level",
            target.name,
        )  # fmt: skip
    except ServiceError as err:
        if err.status_code != 404:
            raise
    return connections.call(
        partial(entitlements.get_service_principal_entitlement, me.id),
        "reading the access level (as a service principal)",
        target.name,
    )


def oauth_policy(connections: Connections, target: Target) -> Check:
    """Advisory: the portal's own data route; any doubt is reported, never blocking."""
    name = "OAuth policy (advisory)"
    url = target.url.rstrip("/") + "/_settings/organizationPolicy"
    try:
        session = connections.creds.signed_session()
        session.headers["User-Agent"] = "container-mapping"
        response = session.get(
            url, params={"__rt": "fps", "__ver": "2"}, timeout=connections.timeout
        )
        response.raise_for_status()
        disallowed = _policy_value(response.json())
    except Exception as err:  # no documented contract: any failure is "unknown"
        logger.debug("%s: policy page unreadable: %s", target.name, type(err).__name__)
        return Check(name, True, "could not be read (no documented API)", advisory=True)
    if disallowed is None:
        return Check(name, True, "not found on the policy page", advisory=True)
    if disallowed:
        return Check(
            name,
            False,
            "appears off",
            "turn on 'Third-party application access via OAuth' in Organization settings > "
            "Policies if the mapping service's OAuth app must reach this organization",
            advisory=True,
        )
    return Check(name, True, "appears on", advisory=True)


def _policy_value(page: Any) -> bool | None:
    """`effectiveValue` of the disallow-OAuth policy: True when third-party OAuth is off."""
    try:
        data = page["fps"]["dataProviders"]["data"][POLICY_PROVIDER]["policies"]
    except (KeyError, TypeError):
        return None
    for group in data.values() if isinstance(data, dict) else []:
        for entry in group if isinstance(group, list) else []:
            policy = entry.get("policy", entry) if isinstance(entry, dict) else {}
            if isinstance(policy, dict) and policy.get("name") == OAUTH_POLICY:
                value = policy.get("effectiveValue", policy.get("value"))
                return bool(value) if isinstance(value, bool) else None
    return None

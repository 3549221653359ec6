"""What there is: the caller's organizations, and each organization's projects and repositories.

v7.1's `get_projects` drops the continuation header, so projects are paged with `$top` and
`$skip` until an empty page (a server may answer fewer than `$top`). Repositories come in one
answer for the whole organization.
"""

from __future__ import annotations

from functools import partial

from container_mapping.azdo.onboard.model import Target
from container_mapping.azdo.onboard.session import Connections

PAGE = 100
MAX_PAGES = 10_000


def my_organizations(connections: Connections, accounts_url: str) -> list[str]:
    """Every organization the caller is a member of (profile, then accounts by member id)."""
    profiles = connections.client(accounts_url, "get_profile_client")
    me = connections.call(lambda: profiles.get_profile("me"), "reading your profile", accounts_url)
    accounts = connections.client(accounts_url, "get_accounts_client")
    found = connections.call(
        lambda: accounts.get_accounts(member_id=me.id), "listing your organizations", accounts_url
    )
    return sorted({str(account.account_name) for account in found or [] if account.account_name})


def count_projects(connections: Connections, target: Target) -> int:
    core = connections.client(target.url, "get_core_client")
    total = 0
    for _ in range(MAX_PAGES):
        page = connections.call(
            partial(core.get_projects, top=PAGE, skip=total),
            "listing projects",
            target.name,
        )
        if not page:
            break
        total += len(page)
    return total


def count_repositories(connections: Connections, target: Target) -> int:
    git = connections.client(target.url, "get_git_client")
    repositories = connections.call(git.get_repositories, "listing repositories", target.name)
    return len(repositories or [])

"""Share, install, update, enable and remove the extension in one organization.

Idempotent: installed at the wanted version is nothing to do, older is updated, newer is left
alone, disabled is reported and left unless `--enable`. A private extension must be shared with
an organization before it can be installed there (and only private extensions may contribute
pipeline decorators), so sharing comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from container_mapping.azdo.onboard.failures import ServiceError
from container_mapping.azdo.onboard.model import Extension, Target, version_key
from container_mapping.azdo.onboard.session import Connections


@dataclass(frozen=True)
class Installed:
    version: str
    disabled: bool
    raw: Any  # the SDK's InstalledExtension, sent back when enabling or updating


@dataclass(frozen=True)
class Plan:
    actions: tuple[str, ...]  # what would be done, in order: share, install, update, enable
    installed: Installed | None
    disabled_left: bool = False


def installed(connections: Connections, target: Target, wanted: Extension) -> Installed | None:
    manager = connections.client(target.url, "get_extension_management_client")
    try:
        found = connections.call(
            lambda: manager.get_installed_extension_by_name(wanted.publisher, wanted.name),
            "reading the installed extension",
            target.name,
        )
    except ServiceError as err:
        if err.status_code == 404:
            return None
        raise
    flags = str(getattr(found.install_state, "flags", "") or "").lower()
    disabled = "disabled" in {flag.strip() for flag in flags.split(",")}
    return Installed(str(found.version or ""), disabled, found)


def plan(current: Installed | None, wanted: Extension, enable: bool) -> Plan:
    if current is None:
        return Plan(("share", "install"), None)
    if current.disabled and not enable:
        return Plan((), current, disabled_left=True)
    actions = ["enable"] if current.disabled else []
    if version_key(current.version) < wanted.key:
        actions.append("update")
    return Plan(tuple(actions), current)


def apply(connections: Connections, target: Target, wanted: Extension, todo: Plan) -> str:
    """Carry out `todo`; the version installed afterwards."""
    manager = connections.client(target.url, "get_extension_management_client")
    version = todo.installed.version if todo.installed else ""
    gallery = connections.client(target.url, "get_gallery_client")
    for action in todo.actions:
        if action == "share":
            connections.write(
                lambda: gallery.share_extension(wanted.publisher, wanted.name, target.name),
                f"sharing {wanted.publisher}.{wanted.name}",
                target.name,
            )
        elif action == "install":
            done = connections.write(
                lambda: manager.install_extension_by_name(
                    wanted.publisher, wanted.name, wanted.version
                ),
                "installing the extension",
                target.name,
            )
            version = str(done.version or wanted.version)
        else:
            version = _patch(connections, manager, target, wanted, todo, action) or version
    return version


def _patch(
    connections: Connections,
    manager: Any,
    target: Target,
    wanted: Extension,
    todo: Plan,
    action: str,
) -> str:
    """Enable (clear the `disabled` flag) or update (ask for the wanted version)."""
    if todo.installed is None:  # enable and update are only planned for an installed one
        raise ValueError(f"cannot {action} an extension that is not installed")
    raw = todo.installed.raw
    if action == "enable":
        flags = str(raw.install_state.flags or "")
        kept = [flag.strip() for flag in flags.split(",") if flag.strip().lower() != "disabled"]
        raw.install_state.flags = ", ".join(kept) or "none"
    else:
        raw.version = wanted.version
    done = connections.write(
        lambda: manager.update_installed_extension(raw),
        f"{action} of the installed extension",
        target.name,
    )
    return str(done.version or "")


def remove(connections: Connections, target: Target, wanted: Extension) -> list[str]:
    """Uninstall (if installed) and unshare; the actions taken."""
    actions: list[str] = []
    if installed(connections, target, wanted) is not None:
        manager = connections.client(target.url, "get_extension_management_client")
        connections.write(
            lambda: manager.uninstall_extension_by_name(
                wanted.publisher, wanted.name, reason="offboarded by container-mapping"
            ),
            "uninstalling the extension",
            target.name,
        )
        actions.append("uninstall")
    gallery = connections.client(target.url, "get_gallery_client")
    try:
        connections.write(
            lambda: gallery.unshare_extension(wanted.publisher, wanted.name, target.name),
            "unsharing the extension",
            target.name,
        )
        actions.append("unshare")
    except ServiceError as err:
        if err.status_code != 404:  # not shared: nothing to undo
            raise
    return actions

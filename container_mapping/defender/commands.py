"""`container-mapping defender connect|inventory|import`: Defender for Cloud's side of the chain.

Registered without importing the Azure SDKs; each handler imports them, and says which extra to
install when they are missing. Every flag has an environment default. The Resource Manager
endpoint (`--arm-endpoint`, `$AZURE_RESOURCE_MANAGER_ENDPOINT`) selects a sovereign cloud.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from container_mapping.cliargs import env, service_flags, subparser

EXTRA_HINT = "container-mapping: the defender commands need: pip install 'container-mapping[azure]'"
_NEEDED = ("azure.identity", "azure.mgmt.security", "azure.mgmt.resourcegraph")

EPILOG = """exit codes:
  0  success
  1  an error: one line on stderr says what and what to do (no access, plan off, throttled,
     wrong tenant, service unreachable)
  2  usage error

credentials: azure-identity's chain (environment, workload identity, managed identity, Azure
CLI, ...), or a bearer token for Resource Manager in CONTAINER_MAPPING_ARM_TOKEN.
"""


def register(commands: Any) -> None:
    defender = _parser(commands, "defender", "Defender for Cloud: connector, inventory, findings")
    actions = defender.add_subparsers(dest="defender_command", required=True, metavar="ACTION")
    connect = _parser(actions, "connect", "create or update the Azure DevOps security connector")
    _connector_flags(connect)
    connect.add_argument(
        "--location",
        default=env("LOCATION"),
        required=not env("LOCATION"),
        help="Azure region of the connector [$CONTAINER_MAPPING_LOCATION]",
    )
    which = connect.add_mutually_exclusive_group()
    which.add_argument(
        "--all-future",
        action="store_true",
        help="every existing and future organization (auto-discovery on)",
    )
    which.add_argument(
        "--organizations",
        metavar="A,B",
        default=env("ORGANIZATIONS"),
        help="only these organizations [$CONTAINER_MAPPING_ORGANIZATIONS]",
    )
    connect.add_argument("--json", action="store_true", help="print the result as JSON")
    connect.set_defaults(handler=_connect)

    inventory = _parser(actions, "inventory", "organizations, projects, repositories it covers")
    _connector_flags(inventory)
    inventory.add_argument("--json", action="store_true", help="print the inventory as JSON")
    inventory.set_defaults(handler=_inventory)

    importer = _parser(actions, "import", "Defender's image findings and running images, by digest")
    importer.add_argument(
        "--subscription",
        action="append",
        metavar="ID",
        default=_list(env("SUBSCRIPTION", "AZURE_SUBSCRIPTION_ID")),
        help="subscription to read (repeatable) [$CONTAINER_MAPPING_SUBSCRIPTION]",
    )
    _arm_flag(importer)
    service_flags(importer, "a key with the link scope")
    importer.add_argument("--json", action="store_true", help="print what was read, post nothing")
    importer.set_defaults(handler=_import)


def _parser(commands: Any, name: str, text: str) -> argparse.ArgumentParser:
    return subparser(commands, name, text, EPILOG)


def _connector_flags(parser: argparse.ArgumentParser) -> None:
    for flag, name, extra, text in (
        ("--subscription", "SUBSCRIPTION", ("AZURE_SUBSCRIPTION_ID",), "subscription id"),
        ("--resource-group", "RESOURCE_GROUP", (), "resource group of the connector"),
        ("--name", "CONNECTOR", (), "the security connector's name"),
    ):
        default = env(name, *extra)
        parser.add_argument(
            flag,
            default=default,
            required=default is None,
            help=f"{text} [$CONTAINER_MAPPING_{name}]",
        )
    _arm_flag(parser)


def _arm_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arm-endpoint",
        metavar="URL",
        default=None,
        help="Resource Manager endpoint for sovereign clouds [$AZURE_RESOURCE_MANAGER_ENDPOINT; "
        "default https://management.azure.com]",
    )


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _missing_extra() -> bool:
    import importlib.util

    try:
        if all(importlib.util.find_spec(name) for name in _NEEDED):
            return False
    except ModuleNotFoundError:
        pass
    print(EXTRA_HINT, file=sys.stderr)
    return True


def _clients(args: argparse.Namespace, subscription: str) -> tuple[Any, Any]:
    from container_mapping.defender import arm

    where = arm.cloud(args.arm_endpoint, os.environ)
    credential = arm.credential(where, os.environ)
    return where, credential


def _security(args: argparse.Namespace, subscription: str) -> Any:
    from azure.mgmt.security import SecurityCenter

    from container_mapping.defender import arm

    where, credential = _clients(args, subscription)
    return SecurityCenter(credential, subscription, **arm.client_options(where))


def _target(args: argparse.Namespace) -> Any:
    from container_mapping.defender.connector import Target

    return Target(args.subscription, args.resource_group, args.name, getattr(args, "location", ""))


def _connect(args: argparse.Namespace) -> int:
    if _missing_extra():
        return 1
    from container_mapping.defender.connector import Selection, connect

    selection = Selection.parse(args.all_future, args.organizations)
    code = os.environ.get("CONTAINER_MAPPING_DEVOPS_AUTHORIZATION_CODE") or None
    with _security(args, args.subscription) as client:
        done = connect(client, _target(args), selection, code)
    if args.json:
        return _print_json(done.to_dict())
    scope = (
        "all existing and future organizations"
        if selection.all_future
        else ", ".join(done.organizations or selection.organizations)
    )
    verb = "created" if done.created else "updated"
    print(f"{verb} connector {args.name} ({done.provisioning_state or 'submitted'}): {scope}")
    return 0


def _inventory(args: argparse.Namespace) -> int:
    if _missing_extra():
        return 1
    from container_mapping.defender.inventory import inventory

    with _security(args, args.subscription) as client:
        items = inventory(client, _target(args))
    if args.json:
        return _print_json([i.to_dict() for i in items])
    _inventory_table(items)
    return 0


def _inventory_table(items: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Azure DevOps connector inventory", title_justify="left")
    for column in ("kind", "organization", "project", "repository", "onboarding", "state"):
        table.add_column(column, overflow="fold")
    for i in items:
        table.add_row(
            i.kind,
            i.organization,
            i.project or "",
            i.repository or "",
            i.onboarding_state or "",
            i.provisioning_state or "",
        )
    Console(soft_wrap=False).print(table)


def _import(args: argparse.Namespace) -> int:
    if _missing_extra():
        return 1
    from azure.mgmt.resourcegraph import ResourceGraphClient

    from container_mapping.defender import arm, graph, importer
    from container_mapping.errors import ConfigError

    subscriptions = list(dict.fromkeys(args.subscription))
    if not subscriptions:
        raise ConfigError("name the subscriptions to read: --subscription ID (repeatable)")
    where, credential = _clients(args, subscriptions[0])
    for subscription in subscriptions:
        from azure.mgmt.security import SecurityCenter

        with SecurityCenter(credential, subscription, **arm.client_options(where)) as security:
            importer.check_plans(security, subscription)
    with ResourceGraphClient(credential, **arm.client_options(where)) as client:
        snapshot = graph.read(client, subscriptions)
    if args.json:
        return _print_json(
            {
                "images": [s.to_dict() for s in snapshot.images],
                "running": [s.to_dict() for s in snapshot.running],
            }
        )
    from container_mapping.service.links.client import ServiceClient

    with ServiceClient(args.server, args.api_key) as service:
        imported = importer.post(service, snapshot, subscriptions)
    print(importer.summary(snapshot, imported))
    return 0


def _print_json(value: Any) -> int:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0

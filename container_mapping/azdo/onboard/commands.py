"""`onboard`, `onboard sync` and `offboard`: the parser and the handlers.

Imported when the parser is built, so it imports nothing of the `azure` extra; the handlers do.
Every flag has a `CONTAINER_MAPPING_<FLAG>` default, as everywhere in the CLI. `sync` as the
first organization means the sync command (give an organization named "sync" as a URL).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from container_mapping import __version__
from container_mapping.errors import ConfigError

EXIT_OK, EXIT_ERROR = 0, 1
EPILOG = """exit codes:
  0  every organization is done (or would be, with --dry-run), skipped or left disabled
  1  an organization failed or was refused (the table says why and what to do), or an error
  2  usage error

credentials: $AZURE_DEVOPS_EXT_PAT (a PAT), else azure-identity's default chain (environment
service principal, workload identity, managed identity, Azure CLI) for Azure DevOps' resource.
state: $CONTAINER_MAPPING_STATE_DIR/onboard/<config-name>.json (default ~/.config/container-mapping)
"""


def register(commands: Any) -> None:
    """Add `onboard` and `offboard` to the CLI's subparsers."""
    from container_mapping.cli import _env

    onboard = _parser(commands, "onboard", "install the extension in Azure DevOps organizations")
    onboard.add_argument(
        "organizations", nargs="*", metavar="ORG|URL",
        help="organization names or URLs; `sync` alone re-runs the recorded configuration",
    )  # fmt: skip
    for flag, text in (
        ("--all", "every organization you belong to"),
        ("--future", "with --all: record the choice, so `onboard sync` brings in new ones"),
        ("--enable", "enable the extension where it is installed but disabled"),
        ("--recheck", "check organizations done earlier again"),
    ):
        variable = "CONTAINER_MAPPING_" + flag[2:].upper()
        onboard.add_argument(flag, action="store_true", default=None,
                             help=f"{text} [${variable}: true/false]")  # fmt: skip
    _common(onboard, _env)
    onboard.add_argument(
        "--accounts-url", default=_env("AZDO_ACCOUNTS_URL"),
        help="where --all asks for your organizations (profile and accounts areas); "
        "default https://app.vssps.visualstudio.com [$CONTAINER_MAPPING_AZDO_ACCOUNTS_URL]",
    )  # fmt: skip
    onboard.set_defaults(handler=_onboard)

    offboard = _parser(commands, "offboard", "uninstall and unshare the extension, drop the claim")
    offboard.add_argument("organizations", nargs="+", metavar="ORG|URL")
    _common(offboard, _env)
    offboard.set_defaults(handler=_offboard)


def _parser(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    return parser


def _common(parser: argparse.ArgumentParser, env: Any) -> None:
    from container_mapping.cli import seconds

    add = parser.add_argument
    add(
        "--dry-run",
        action="store_true",
        default=None,
        help="show what would change; change nothing [$CONTAINER_MAPPING_DRY_RUN: true/false]",
    )
    add(
        "--json",
        action="store_true",
        default=None,
        help="print the outcome as JSON [$CONTAINER_MAPPING_JSON: true/false]",
    )
    add(
        "--config-name",
        default=env("CONFIG_NAME", "default"),
        help="the configuration (its own state and claim) [$CONTAINER_MAPPING_CONFIG_NAME]",
    )
    add(
        "--publisher",
        default=env("PUBLISHER"),
        help="Marketplace publisher; default the recorded one, else container-mapping "
        "[$CONTAINER_MAPPING_PUBLISHER]",
    )
    add(
        "--extension",
        default=env("EXTENSION"),
        help="extension id; default the recorded one, else container-mapping "
        "[$CONTAINER_MAPPING_EXTENSION]",
    )
    add(
        "--version",
        dest="ext_version",
        default=env("EXTENSION_VERSION"),
        help=f"extension version; default the recorded one, else {__version__} "
        "[$CONTAINER_MAPPING_EXTENSION_VERSION]",
    )
    add(
        "--org-url",
        default=env("AZDO_ORG_URL"),
        help="URL of an organization given by name, with {org}; default "
        "https://dev.azure.com/{org} [$CONTAINER_MAPPING_AZDO_ORG_URL]",
    )
    add("--request-timeout", type=seconds, default=env("REQUEST_TIMEOUT", "30"),
        metavar="SECONDS", help="seconds each request may take; default 30 "
        "[$CONTAINER_MAPPING_REQUEST_TIMEOUT]")  # fmt: skip


def _flags(args: argparse.Namespace, *names: str) -> None:
    """A boolean flag not given takes its variable (`--dry-run` <- CONTAINER_MAPPING_DRY_RUN)."""
    from container_mapping.cli import env_flag

    for name in names:
        if getattr(args, name) is None:
            setattr(args, name, env_flag(name.upper()))


def _onboard(args: argparse.Namespace) -> int:
    from container_mapping.azdo.onboard import flow

    _flags(args, "dry_run", "json", "all", "future", "enable", "recheck")

    if args.organizations[:1] == ["sync"]:
        if args.organizations[1:] or args.all or args.future:
            raise ConfigError("`onboard sync` takes no organizations and no --all/--future")
        return flow.sync(args)
    if args.future and not args.all:
        raise ConfigError("--future needs --all: it records 'every organization, now and later'")
    if not args.organizations and not args.all:
        raise ConfigError("name the organizations (names or URLs), or give --all")
    return flow.onboard(args)


def _offboard(args: argparse.Namespace) -> int:
    from container_mapping.azdo.onboard import flow

    _flags(args, "dry_run", "json")

    return flow.offboard(args)


def report_failures(count: int, total: int) -> None:
    print(
        f"container-mapping: error: {count} of {total} organizations not onboarded: the table "
        "says why and what to do; a re-run does only what is left",
        file=sys.stderr,
    )

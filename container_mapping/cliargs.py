"""What the operator-side commands (`link`, `trace`, `defender`) share on the command line.

Each command registers its own subcommands; this module gives them one way to make a
subcommand, one reading of `$CONTAINER_MAPPING_*` defaults and the same `--server`/`--api-key`
pair wherever a command talks to the mapping service.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def env(name: str, *others: str) -> str | None:
    """`$CONTAINER_MAPPING_<name>`, else the first of `others` that is set (non-empty)."""
    for variable in (f"CONTAINER_MAPPING_{name}", *others):
        if os.environ.get(variable):
            return os.environ[variable]
    return None


def subparser(commands: Any, name: str, text: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose help and description are `text`, with the command's `epilog`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=text,
        description=text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def service_flags(parser: argparse.ArgumentParser, key_text: str) -> None:
    """`--server URL` and `--api-key KEY`, defaulting to their environment variables."""
    parser.add_argument(
        "--server",
        metavar="URL",
        default=env("SERVER"),
        help="the mapping service [$CONTAINER_MAPPING_SERVER]",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        default=env("API_KEY"),
        help=f"{key_text} [$CONTAINER_MAPPING_API_KEY]",
    )

"""`container-mapping`: one command, one subcommand per job.

Every flag has an environment-variable default (`CONTAINER_MAPPING_<FLAG>`), since pipeline
variables arrive as environment variables. Heavy modules are imported inside the handlers, so
`--help` and the fast paths stay fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from container_mapping import __version__
from container_mapping.errors import ConfigError, EngineUnavailable, Error

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_ENGINE = 3

EPILOG = """exit codes:
  0  success
  1  an error (one line on stderr says what and what to do)
  2  usage error (a flag or value is wrong)
  3  no Docker engine reachable (DOCKER_HOST, docker context, default socket)
"""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CONTAINER_MAPPING_{name}", default)


def _env_flag(name: str) -> bool:
    return (_env(name) or "").strip().lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="container-mapping",
        description="Map the container images a pipeline job pushed to the job that pushed them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    collect = _subcommand(
        commands,
        "collect",
        "list the images pushed (and built) in a time window, with exact digests",
    )
    collect.add_argument(
        "--since",
        default=_env("SINCE"),
        required=_env("SINCE") is None,
        help="window start: RFC 3339, or a duration back like 10m [$CONTAINER_MAPPING_SINCE]",
    )
    collect.add_argument(
        "--until",
        default=_env("UNTIL"),
        help="window end, same forms; default now [$CONTAINER_MAPPING_UNTIL]",
    )
    collect.add_argument(
        "--verify",
        action="store_true",
        default=_env_flag("VERIFY"),
        help="ask each registry for the manifest digest; mark records verified or mismatched "
        "[$CONTAINER_MAPPING_VERIFY]",
    )
    collect.add_argument(
        "--json",
        action="store_true",
        default=_env_flag("JSON"),
        help="print the versioned JSON report [$CONTAINER_MAPPING_JSON]",
    )
    collect.add_argument(
        "--timeout",
        type=float,  # argparse applies it to a string default too: a bad value is a usage error
        default=_env("TIMEOUT", "60"),
        help="give up after this many seconds [$CONTAINER_MAPPING_TIMEOUT]",
    )
    collect.set_defaults(handler=_collect)

    package = _subcommand(
        commands, "package", "build the Azure DevOps extension (.vsix) with the pinned tfx-cli"
    )
    package.add_argument(
        "--output", metavar="DIR", default=_env("OUTPUT", "dist"),
        help="directory to write the .vsix to [$CONTAINER_MAPPING_OUTPUT; default: dist]",
    )  # fmt: skip
    package.add_argument(
        "--publisher", metavar="P", default=_env("PUBLISHER"),
        help="publisher [$CONTAINER_MAPPING_PUBLISHER; default: vss-extension.json's]",
    )  # fmt: skip
    package.add_argument(
        "--extension-id", metavar="ID", default=_env("EXTENSION_ID"),
        help="extension id [$CONTAINER_MAPPING_EXTENSION_ID; default: vss-extension.json's]",
    )  # fmt: skip
    package.add_argument(
        "--version", metavar="V", dest="extension_version", default=_env("EXTENSION_VERSION"),
        help="extension version MAJOR.MINOR.PATCH [$CONTAINER_MAPPING_EXTENSION_VERSION; "
        f"default: the package's, {__version__}]",
    )  # fmt: skip
    package.set_defaults(handler=_package)
    from container_mapping.service.commands import register as register_service

    register_service(commands)
    from container_mapping.defender.commands import register as register_defender

    register_defender(commands)
    return parser


def _subcommand(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser


def _collect(args: argparse.Namespace) -> int:
    import json
    import time
    from datetime import datetime, timezone

    from container_mapping.capture import capture
    from container_mapping.model import CollectionWindow
    from container_mapping.render import table
    from container_mapping.window import parse_moment

    now = datetime.now(timezone.utc)
    until = parse_moment(args.until, now) if args.until else now
    window = CollectionWindow(parse_moment(args.since, now), until)
    report = capture(
        window, environ=os.environ, verify=args.verify, deadline=time.monotonic() + args.timeout
    )
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table(report))
    return EXIT_OK


def _package(args: argparse.Namespace) -> int:
    from container_mapping import packaging

    return packaging.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="container-mapping: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except EngineUnavailable as err:
        print(f"container-mapping: {err}", file=sys.stderr)
        return EXIT_NO_ENGINE
    except Error as err:
        print(f"container-mapping: error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""`container-mapping`: one command, one subcommand per job.

Every flag has an environment-variable default (`CONTAINER_MAPPING_<FLAG>`), since pipeline
variables arrive as environment variables; an empty variable counts as unset, and a value the
flag would refuse is a usage error naming the variable. Heavy modules are imported inside the
handlers, so `--help` and the fast paths stay fast.

Building the extension (.vsix) is not a subcommand: it needs a checkout (the task's shim, the
manifest, the pinned tfx-cli), so it is the development tool `extension/package.py`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from container_mapping import __version__
from container_mapping.diagnostics import log_outcome, logger, ms_since, stderr_logging, timed
from container_mapping.errors import ConfigError, EngineUnavailable, Error

if TYPE_CHECKING:
    from datetime import datetime

    from container_mapping.model import CollectionWindow

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_ENGINE = 3
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C

EPILOG = """exit codes:
  0  success
  1  an error (one line on stderr says what and what to do)
  2  usage error (a flag, an environment default or a value is wrong)
  3  no Docker engine reachable (DOCKER_HOST, docker context, default socket)
  130  interrupted (Ctrl-C)
"""
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _env(name: str, default: str | None = None) -> str | None:
    """`CONTAINER_MAPPING_<name>`, or `default` when unset or blank."""
    value = os.environ.get(f"CONTAINER_MAPPING_{name}", "")
    return value if value.strip() else default


def env_flag(name: str) -> bool:
    """A boolean environment default: true/false, 1/0, yes/no, on/off (any case); unset: false."""
    value = (_env(name) or "false").strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ConfigError(
        f"CONTAINER_MAPPING_{name}={_env(name)!r} is not a boolean: "
        "use true or false (also 1/0, yes/no, on/off), or unset it"
    )


def seconds(text: str) -> float:
    """A time budget: a positive, finite number of seconds (`--timeout`'s argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time budget: give a positive number of seconds, such as 60 "
            "(from the flag or $CONTAINER_MAPPING_TIMEOUT)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="container-mapping",
        description="Map the container images a pipeline job pushed to the job that pushed them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbose_flag(parser, default=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    collect = _subcommand(
        commands,
        "collect",
        "list the images pushed (and built) in a time window, with exact digests",
    )
    collect.add_argument(
        "--since",
        required=_env("SINCE") is None,  # else the variable, read (and named) in the handler
        help="window start: RFC 3339, or a duration back like 10m [$CONTAINER_MAPPING_SINCE]",
    )
    collect.add_argument(
        "--until",
        help="window end, same forms; default now [$CONTAINER_MAPPING_UNTIL]",
    )
    collect.add_argument(
        "--verify",
        action="store_true",
        default=None,  # then $CONTAINER_MAPPING_VERIFY decides, checked in the handler
        help="ask each registry for the manifest digest; mark records verified or mismatched "
        "[$CONTAINER_MAPPING_VERIFY: true/false]",
    )
    collect.add_argument(
        "--json",
        action="store_true",
        default=None,
        help="print the versioned JSON report [$CONTAINER_MAPPING_JSON: true/false]",
    )
    collect.add_argument(
        "--timeout",
        type=seconds,  # argparse applies it to a string default too: a bad value is a usage error
        default=_env("TIMEOUT", "60"),
        metavar="SECONDS",
        help="give up after this many seconds (more than 0); default 60 "
        "[$CONTAINER_MAPPING_TIMEOUT]",
    )
    collect.set_defaults(handler=_collect)
    from container_mapping.azdo.onboard.commands import register as register_onboarding

    register_onboarding(commands)  # onboard, offboard (operator side; the azure extra)
    from container_mapping.service.commands import register as register_service

    register_service(commands)  # serve, db, link, trace (operator side; the service extra)
    from container_mapping.defender.commands import register as register_defender

    register_defender(commands)  # defender connect, inventory, import (the azure extra)
    return parser


def _verbose_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default,
        help="log diagnostics to stderr: engine address, window, events, images, registry, timings",
    )  # fmt: skip


def _subcommand(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _verbose_flag(parser, default=argparse.SUPPRESS)  # `collect -v` works as well as `-v collect`
    return parser


def _collect(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone

    from container_mapping.capture import all_collectors, capture, registry_factory
    from container_mapping.context import from_environment
    from container_mapping.model import format_time
    from container_mapping.render import table

    verify = env_flag("VERIFY") if args.verify is None else args.verify
    as_json = env_flag("JSON") if args.json is None else args.json
    window = _window(args.since, args.until, datetime.now(timezone.utc))
    logger.debug(
        "window %s to %s (%.0fs); verify %s; budget %gs",
        format_time(window.since), format_time(window.until),
        (window.until - window.since).total_seconds(), "on" if verify else "off", args.timeout,
    )  # fmt: skip
    started = time.monotonic()
    registry = timed(registry_factory(os.environ))
    report = capture(
        window,
        from_environment(os.environ),
        collectors=all_collectors(os.environ, registry),
        registry=registry,
        verify=verify,
        deadline=started + args.timeout,
    )
    log_outcome(report, started)
    if as_json:
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table(report))
    return EXIT_OK


def _window(since_flag: str | None, until_flag: str | None, now: datetime) -> CollectionWindow:
    from container_mapping.model import CollectionWindow, format_time

    since = _moment("since", since_flag, now)
    until = _moment("until", until_flag, now) or now
    if since is None:  # argparse requires --since when the variable is unset; never here
        raise ConfigError("give --since (or set CONTAINER_MAPPING_SINCE)")
    if until < since:
        raise ConfigError(
            f"the window ends ({format_time(until)}) before it starts ({format_time(since)}): "
            "give an --until later than --since"
        )
    return CollectionWindow(since, until)


def _moment(name: str, flag: str | None, now: datetime) -> datetime | None:
    """A window bound from its flag, else its variable; an error names whichever it came from."""
    from container_mapping.window import parse_moment

    text = flag if flag is not None else _env(name.upper())
    if text is None:
        return None
    try:
        return parse_moment(text, now)
    except ConfigError as err:
        source = f"--{name}" if flag is not None else f"$CONTAINER_MAPPING_{name.upper()}"
        raise ConfigError(f"{source}: {err}") from None


def _failed(err: Error, started: float, timeout: float | None) -> int:
    """The one line an error gets, and its exit code."""
    logger.debug("failed after %.1f ms: %s: %s", ms_since(started), type(err).__name__, err)
    if isinstance(err, EngineUnavailable):
        if timeout is not None and time.monotonic() - started >= timeout:
            print(
                f"container-mapping: error: the {timeout:g}s --timeout ran out before the "
                "Docker engine answered; give a longer --timeout",
                file=sys.stderr,
            )
            return EXIT_ERROR
        print(f"container-mapping: {err}", file=sys.stderr)
        return EXIT_NO_ENGINE
    print(f"container-mapping: error: {err}", file=sys.stderr)
    return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.monotonic()
    with stderr_logging(args.verbose):
        try:
            return int(args.handler(args))
        except Error as err:
            return _failed(err, started, getattr(args, "timeout", None))
        except BrokenPipeError:  # `collect --json | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        except KeyboardInterrupt:
            print("container-mapping: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

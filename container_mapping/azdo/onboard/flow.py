"""The handlers' bodies: settings from flags, state and defaults, then a run, then its output.

Kept apart from `commands` so the parser never imports the `azure` extra.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from container_mapping import __version__
from container_mapping.azdo.onboard import output, targets
from container_mapping.azdo.onboard.model import Extension, Outcome, Status, Target
from container_mapping.azdo.onboard.run import Options, onboard_all
from container_mapping.azdo.onboard.state import State, load, save
from container_mapping.errors import ConfigError

DEFAULT_NAME = "container-mapping"


def _sdk() -> Any:
    """The connections factory, or a clear error when the `azure` extra is missing."""
    from importlib.util import find_spec

    for module in ("azure.devops", "azure.identity", "msrest", "rich"):
        try:
            found = find_spec(module) is not None
        except ImportError:  # the parent package (azure) is missing
            found = False
        if not found:
            raise ConfigError(
                f"onboarding needs the azure extra ({module} is missing): "
                "pip install 'container-mapping[azure]'"
            )
    from container_mapping.azdo.onboard import session

    return session


def _wanted(args: argparse.Namespace, state: State) -> Extension:
    recorded = state.extension
    return Extension(
        args.publisher or (recorded.publisher if recorded else DEFAULT_NAME),
        args.extension or (recorded.name if recorded else DEFAULT_NAME),
        args.ext_version or (recorded.version if recorded else __version__),
    )


def _connections(args: argparse.Namespace) -> Any:
    session = _sdk()
    from container_mapping.azdo.onboard.failures import Recorder

    return session.Connections(session.credentials(), args.request_timeout, Recorder())


def onboard(args: argparse.Namespace) -> int:
    state = load(args.config_name)
    org_url = args.org_url or state.org_url or targets.DEFAULT_ORG_URL
    accounts_url = args.accounts_url or state.accounts_url or targets.DEFAULT_ACCOUNTS_URL
    wanted = _wanted(args, state)
    chosen = [targets.target(text, org_url) for text in args.organizations]
    connections = _connections(args)
    if args.all:
        from container_mapping.azdo.onboard.inventory import my_organizations

        names = my_organizations(connections, accounts_url)
        chosen += targets.listed(names, org_url)
    state = replace(
        state, extension=wanted, org_url=org_url, accounts_url=accounts_url,
        all_organizations=state.all_organizations or args.all,
        future=args.future if args.all else state.future,  # --all without --future undoes it
    )  # fmt: skip
    return _run(args, connections, _unique(chosen), wanted, state)


def sync(args: argparse.Namespace) -> int:
    state = load(args.config_name)
    if state.extension is None:
        raise ConfigError(
            f"configuration {args.config_name!r} has nothing to sync: run `onboard` first"
        )
    wanted = _wanted(args, state)
    connections = _connections(args)
    chosen = [
        Target(name, entry["url"])
        for name, entry in sorted(state.organizations.items())
        if entry.get("status") != Status.OFFBOARDED.value
    ]
    unlisted: list[Outcome] = []
    if state.future:
        from container_mapping.azdo.onboard.failures import ServiceError
        from container_mapping.azdo.onboard.inventory import my_organizations

        try:
            names = my_organizations(connections, state.accounts_url)
        except ServiceError as err:  # the recorded organizations are still kept current
            names = []
            unlisted.append(Outcome("(new organizations)", state.accounts_url, Status.FAILED,
                                    cause=err.cause, fix=err.fix))  # fmt: skip
        new = [name for name in names if name not in state.organizations]
        chosen += targets.listed(new, state.org_url)
    state = replace(state, extension=wanted)
    return _run(args, connections, _unique(chosen), wanted, state, unlisted)


def _unique(chosen: list[Target]) -> list[Target]:
    seen: dict[str, Target] = {}
    for target in chosen:
        seen.setdefault(target.name.lower(), target)
    return list(seen.values())


def _run(
    args: argparse.Namespace, connections: Any, chosen: list[Target], wanted: Extension,
    state: State, unlisted: list[Outcome] | None = None,
) -> int:  # fmt: skip
    if not args.dry_run:
        save(state)  # the choice (--all --future, the extension) is recorded before any call
    options = Options(wanted, args.dry_run, args.enable, args.recheck)
    with output.progress(len(chosen), enabled=not args.json) as advance:
        outcomes, state = onboard_all(connections, chosen, options, state, advance)
    title = "Onboarding (dry run: nothing changed)" if args.dry_run else "Onboarding"
    return _show(args, (unlisted or []) + outcomes, state, title)


def offboard(args: argparse.Namespace) -> int:
    from container_mapping.azdo.onboard.run import offboard as offboard_one

    state = load(args.config_name)
    org_url = args.org_url or state.org_url or targets.DEFAULT_ORG_URL
    wanted = _wanted(args, state)
    connections = _connections(args)
    outcomes = []
    for text in args.organizations:
        recorded = state.organizations.get(text, {}).get("url")
        target = Target(text, recorded) if recorded else targets.target(text, org_url)
        outcome, state = offboard_one(connections, target, wanted, state, args.dry_run)
        outcomes.append(outcome)
    title = "Offboarding (dry run: nothing changed)" if args.dry_run else "Offboarding"
    return _show(args, outcomes, state, title)


def _show(args: argparse.Namespace, outcomes: list[Outcome], state: State, title: str) -> int:
    from container_mapping.azdo.onboard.commands import EXIT_ERROR, EXIT_OK, report_failures

    if args.json:
        meta = {"configuration": {"name": state.name, "id": state.id}, "dryRun": args.dry_run}
        output.as_json(outcomes, meta)
    else:
        output.tables(outcomes, title)
    failed = output.failures(outcomes)
    if failed:
        report_failures(len(failed), len(outcomes))
        return EXIT_ERROR
    return EXIT_OK

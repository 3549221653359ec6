"""One organization from start to finish, and many with the others unaffected by one failing.

Order per organization: the claim (refused if another configuration holds it), the
prerequisites (a missing one stops this organization with its fix), projects and repositories,
then the extension. Each step is idempotent; the state is saved after every organization, so
an interrupted or partly failed run is finished by running it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from container_mapping.azdo.onboard import checks, extension, inventory, marker
from container_mapping.azdo.onboard.failures import ServiceError
from container_mapping.azdo.onboard.model import Extension, Outcome, Status, Target
from container_mapping.azdo.onboard.session import Connections
from container_mapping.azdo.onboard.state import State, now, save

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    extension: Extension
    dry_run: bool = False
    enable: bool = False
    recheck: bool = False


Progress = Callable[[Target, Outcome], None]


def onboard_all(
    connections: Connections,
    targets: Iterable[Target],
    options: Options,
    state: State,
    progress: Progress | None = None,
) -> tuple[list[Outcome], State]:
    outcomes = []
    for target in targets:
        if not options.recheck and state.done_at(target.name, options.extension):
            outcome = Outcome(
                target.name,
                target.url,
                Status.SKIPPED,
                installed_version=options.extension.version,
                cause="done earlier at this version (--recheck to check again)",
            )
        else:
            outcome = onboard_one(connections, target, options, state)
            if not options.dry_run:
                state = state.with_outcome(outcome, options.extension)
                save(state)
        outcomes.append(outcome)
        if progress is not None:
            progress(target, outcome)
    return outcomes, state


def onboard_one(
    connections: Connections, target: Target, options: Options, state: State
) -> Outcome:
    try:
        return _steps(connections, target, options, state)
    except ServiceError as err:
        logger.debug("%s: %s", target.name, err)
        return Outcome(target.name, target.url, Status.FAILED, cause=err.cause, fix=err.fix)


def _steps(connections: Connections, target: Target, options: Options, state: State) -> Outcome:
    claim = marker.read(connections, target)
    if claim is not None and claim.id != state.id:
        cause, fix = marker.refusal(claim, target, state.name)
        return Outcome(target.name, target.url, Status.REFUSED, cause=cause, fix=fix)
    found = checks.prerequisites(connections, target, checks.caller(connections, target))
    missing = [check for check in found if not check.ok and not check.advisory]
    if missing:
        return Outcome(target.name, target.url, Status.FAILED, checks=found,
                       cause="; ".join(f"{c.name}: {c.detail}" for c in missing),
                       fix="; ".join(c.fix for c in missing))  # fmt: skip
    projects = inventory.count_projects(connections, target)
    repositories = inventory.count_repositories(connections, target)
    current = extension.installed(connections, target, options.extension)
    seen = Outcome(
        target.name, target.url, Status.DONE, checks=found, projects=projects,
        repositories=repositories, installed_version=current.version if current else None,
    )  # fmt: skip
    todo = extension.plan(current, options.extension, options.enable)
    if todo.disabled_left:
        return replace(seen, status=Status.DISABLED,
                       cause="the extension is installed but disabled; left as it is",
                       fix="re-run with --enable, or enable it in Organization settings > "
                       "Extensions")  # fmt: skip
    actions = (() if claim else ("claim",)) + todo.actions
    if options.dry_run:
        return replace(seen, status=Status.WOULD_CHANGE if actions else Status.DONE,
                       actions=actions)  # fmt: skip
    if claim is None:  # claimed before any change, so a second configuration stops here
        marker.put(connections, target, marker.Claim(state.name, state.id, now()))
    version = extension.apply(connections, target, options.extension, todo)
    return replace(seen, actions=actions, installed_version=version)


def offboard(
    connections: Connections, target: Target, wanted: Extension, state: State, dry_run: bool
) -> tuple[Outcome, State]:
    try:
        claim = marker.read(connections, target)
        if claim is not None and claim.id != state.id:
            cause, fix = marker.refusal(claim, target, state.name)
            return Outcome(target.name, target.url, Status.REFUSED, cause=cause, fix=fix), state
        if claim is None and target.name not in state.organizations:
            return _not_ours(target, state), state
        if dry_run:
            current = extension.installed(connections, target, wanted)
            actions = (("uninstall",) if current else ()) + ("unshare",)
            actions += ("release claim",) if claim else ()
            return Outcome(target.name, target.url, Status.WOULD_CHANGE, actions), state
        actions = tuple(extension.remove(connections, target, wanted))
        if claim is not None:
            marker.remove(connections, target)
            actions += ("release claim",)
        outcome = Outcome(target.name, target.url, Status.OFFBOARDED, actions)
    except ServiceError as err:
        outcome = Outcome(target.name, target.url, Status.FAILED, cause=err.cause, fix=err.fix)
    if not dry_run:
        state = state.with_outcome(outcome, wanted)
        save(state)
    return outcome, state


def _not_ours(target: Target, state: State) -> Outcome:
    """Neither claimed by nor recorded in this configuration: an install someone else made."""
    return Outcome(
        target.name, target.url, Status.REFUSED,
        cause=f"{target.name} was not onboarded by configuration {state.name!r}: no claim on the "
        "organization and no record in its state",
        fix="run offboard from the configuration that onboarded it (--config-name), or remove "
        "the extension by hand in Organization settings > Extensions",
    )  # fmt: skip

"""What a person or a script sees: the prerequisites table, the summary, or JSON.

rich draws the tables; the progress bar appears only on a terminal (stderr is a TTY), never in
a pipeline's log. Results go to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from container_mapping.azdo.onboard.model import Outcome, Status, Target

_MARK = {True: "ok", False: "MISSING"}


def as_json(outcomes: Sequence[Outcome], meta: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump({**meta, "organizations": [o.to_dict() for o in outcomes]}, out, indent=2)
    out.write("\n")


def tables(outcomes: Sequence[Outcome], title: str, out: TextIO | None = None) -> None:
    from rich.console import Console

    out = out or sys.stdout
    console = Console(file=out, width=None if out.isatty() else 160, soft_wrap=False)
    checked = [o for o in outcomes if o.checks]
    if checked:
        console.print(_prerequisites(checked))
    console.print(_summary(outcomes, title))


def _prerequisites(outcomes: Sequence[Outcome]) -> Any:
    from rich.table import Table

    table = Table(title="Prerequisites", title_justify="left")
    for column in ("Organization", "Check", "Result", "Detail", "Fix"):
        table.add_column(column)
    for outcome in outcomes:
        for check in outcome.checks:
            result = "advisory" if check.advisory and not check.ok else _MARK[check.ok]
            table.add_row(outcome.organization, check.name, result, check.detail, check.fix)
    return table


def _summary(outcomes: Sequence[Outcome], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("Organization", "Status", "Projects", "Repos", "Version", "Actions", "Why"):
        table.add_column(column)
    for o in outcomes:
        why = f"{o.cause}. Fix: {o.fix}" if o.fix else o.cause
        table.add_row(o.organization, o.status.value, _n(o.projects), _n(o.repositories),
                      o.installed_version or "", ", ".join(o.actions) or "-", why)  # fmt: skip
    return table


def _n(value: int | None) -> str:
    return "" if value is None else str(value)


@contextmanager
def progress(total: int, enabled: bool) -> Iterator[Any]:
    """A callback advancing a bar on stderr when it is a terminal; a no-op otherwise."""
    if not enabled or total < 2 or not sys.stderr.isatty():
        yield lambda target, outcome: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("organizations", total=total)

        def advance(target: Target, outcome: Outcome) -> None:
            bar.update(task, advance=1, description=f"{target.name}: {outcome.status.value}")

        yield advance


def failures(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status in (Status.FAILED, Status.REFUSED)]

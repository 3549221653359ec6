"""The trace answer for people: one panel per image, its chain as tables (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def render(
    answer: dict[str, Any], page_url: str | None = None, console: Console | None = None
) -> None:
    console = console or Console(soft_wrap=False)
    if answer["query"]["kind"] == "unmapped":
        _unmapped(console, answer["unmapped"])
    for image in answer["images"]:
        _image(console, image)
    if answer.get("truncated"):
        console.print("[yellow]more images matched; the first ones are shown[/]")
    if page_url:
        console.print(f"page: {page_url}", highlight=False, soft_wrap=True)


def _image(console: Console, image: dict[str, Any]) -> None:
    console.rule(f"[bold]{image['digest']}", align="left")
    for rel in image["related"]:
        what = "platform manifest" if rel["relation"] == "platform" else "part of index"
        console.print(f"  {what} {rel['digest']} {rel.get('platform') or ''}", highlight=False)
    console.print(_produced(image["producedBy"]))
    console.print(_stored(image["storedIn"]))
    console.print(_running(image["runsIn"], "runs in"))
    if image.get("defender"):
        from container_mapping.service.defender.render import defender_table

        console.print(defender_table(image["defender"]))


def _produced(rows: list[dict[str, Any]]) -> Table | str:
    organizations = sorted({_name(m["organization"]) for m in rows} - {""})
    title = "produced by" + (f" (organization {', '.join(organizations)})" if organizations else "")
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("project", "pipeline", "run (id)", "repository", "branch", "job"):
        table.add_column(column, overflow="fold")
    for column in ("commit", "when"):
        table.add_column(column, no_wrap=True)
    for m in rows:
        run = m.get("run") or {}
        number = f"{run.get('number') or ''} ({run.get('id')})" if run else ""
        if m["evidence"] == "label":
            number = (number + " [yellow]labels[/]").strip()
        table.add_row(
            _name(m["project"]), _name(m["pipeline"]), number,
            m["repository"].get("name") or m["repository"].get("uri") or "",
            m.get("branch") or "", _name(m["job"]), (m.get("commit") or "")[:12],
            m.get("when") or "",
        )  # fmt: skip
    return _or_none(table, rows, "no run is known to have produced it")


def _stored(rows: list[dict[str, Any]]) -> Table | str:
    table = Table(title="stored in", title_justify="left")
    for column in ("registry", "repository", "tags", "platform", "digest", "seen"):
        table.add_column(column, overflow="fold")
    for s in rows:
        table.add_row(
            s["registry"], s["repository"], ", ".join(s["tags"]), s.get("platform") or "",
            s["digest"][:19] + "…", f"{s.get('seenAt') or ''} ({s['source']})",
        )  # fmt: skip
    return _or_none(table, rows, "no registry crawl has seen it")


def _running(rows: list[dict[str, Any]], title: str) -> Table | str:
    table = Table(title=title, title_justify="left")
    for column in ("cluster", "namespace", "workload", "container", "image", "last seen"):
        table.add_column(column, overflow="fold")
    for r in rows:
        workload = f"{r['workload']['kind']}/{r['workload']['name']}"
        if r["workload"]["inferred"]:
            workload += " (inferred)"
        container = r["container"] + (
            "" if r["containerKind"] == "regular" else f" ({r['containerKind']})"
        )
        image = r["image"] if r["resolvable"] else f"{r['image']} [yellow](no manifest digest)[/]"
        table.add_row(r["cluster"], r["namespace"], workload, container, image, r["lastSeen"])
    return _or_none(table, rows, "no pod snapshot runs it")


def _unmapped(console: Console, rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("every container of the last snapshots was produced by a known run")
        return
    console.print(_running(rows, f"running, produced by no known run ({len(rows)})"))


def _or_none(table: Table, rows: list[Any], empty: str) -> Table | str:
    return table if rows else f"[dim]{table.title}: {empty}[/]"


def _name(value: dict[str, Any]) -> str:
    return str(value.get("name") or value.get("id") or "")

"""An image's chain laid out as a picture: commit → run → image → registry → workload.

Five columns of boxes, joined left to right: each commit to the runs that built it, each run to
the image, the image to each place a registry holds it, and those to the workloads running it.
The layout is computed here and drawn by the template as inline SVG, so the page needs no
script library and no network.
"""

from __future__ import annotations

from dataclasses import dataclass

from container_mapping.service.trace.models import ImageTrace, ProducedBy, RunsIn, StoredIn

COLUMNS = ("commit", "run", "image", "registry", "workload")
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 220, 62, 52, 18, 12
MAX_PER_COLUMN = 12
MAX_CHARS = 30  # of the small lines
MAX_BOLD = 23  # of the bold line


@dataclass(frozen=True)
class Node:
    key: str
    kind: str
    title: str
    line: str
    sub: str
    full: str
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    columns: tuple[tuple[str, int], ...]  # heading, x
    box_w: int = BOX_W
    box_h: int = BOX_H


def short(text: str | None, limit: int = MAX_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_digest(digest: str) -> str:
    return digest[:18] + "…" if digest.startswith("sha256:") else short(digest, MAX_BOLD)


def draw(trace: ImageTrace) -> Picture:
    columns: dict[str, dict[str, Node]] = {c: {} for c in COLUMNS}
    links: set[tuple[str, str]] = set()
    image_key = _add(columns, _image_node(trace))
    for made in trace.producedBy:
        run_key = _add(columns, _run_node(made))
        links.add((run_key, image_key))
        if made.commit:
            links.add((_add(columns, _commit_node(made)), run_key))
    stores = [_add(columns, _store_node(s)) for s in trace.storedIn if s.parentDigest is None]
    stores = stores or [_add(columns, _store_node(s)) for s in trace.storedIn]
    links.update((image_key, s) for s in stores)
    for running in trace.runsIn:
        workload = _add(columns, _workload_node(running))
        sources = stores or [image_key]
        links.update((source, workload) for source in sources)
    return _layout(columns, links)


def _add(columns: dict[str, dict[str, Node]], node: Node) -> str:
    column = columns[node.kind]
    if node.key not in column and len(column) < MAX_PER_COLUMN:
        column[node.key] = node
    return node.key


def _image_node(trace: ImageTrace) -> Node:
    platforms = [r.platform for r in trace.related if r.relation == "platform" and r.platform]
    own = next((s.platform for s in trace.storedIn if s.digest == trace.digest and s.platform), "")
    sub = "index: " + ", ".join(platforms) if platforms else own
    if any(r.relation == "index" for r in trace.related):
        sub = f"{own} in an index".strip()
    return Node("image", "image", "image", short_digest(trace.digest), short(sub), trace.digest)


def _run_node(made: ProducedBy) -> Node:
    run = made.run
    number = (run.number or run.id) if run else "?"
    pipeline = made.pipeline.name or made.pipeline.id or "pipeline unknown"
    title = "run (from labels)" if made.evidence == "label" else "run"
    line = f"{pipeline} #{number}" if made.evidence == "report" else f"run {number}"
    sub = f"{made.project.name or ''} · job {made.job.name or '?'}" if made.project.name else ""
    full = f"{made.organization.name}/{made.project.name}/{pipeline} run {run.id if run else '?'}"
    key = f"run:{made.evidence}:{run.id if run else '?'}:{made.pipeline.id}"
    return Node(key, "run", title, short(line, MAX_BOLD), short(sub), full)


def _commit_node(made: ProducedBy) -> Node:
    commit = made.commit or ""
    repository = made.repository.name or made.repository.uri or ""
    full = f"{repository} {commit} {made.branch or ''}".strip()
    return Node(f"commit:{commit}", "commit", "commit", commit[:12], short(repository), full)


def _store_node(stored: StoredIn) -> Node:
    tags = ", ".join(stored.tags) or short_digest(stored.digest)
    full = f"{stored.registry}/{stored.repository} {tags} ({stored.source})"
    key = f"store:{stored.registry}/{stored.repository}"
    return Node(
        key, "registry", stored.registry, short(stored.repository, MAX_BOLD), short(tags), full
    )


def _workload_node(running: RunsIn) -> Node:
    workload = running.workload
    line = f"{workload.kind}/{workload.name}"
    sub = f"{running.namespace} · {running.container}"
    key = f"workload:{running.cluster}/{running.namespace}/{line}/{running.container}"
    full = f"{running.cluster}/{running.namespace}/{line} container {running.container}"
    return Node(key, "workload", running.cluster, short(line, MAX_BOLD), short(sub), full)


def _layout(columns: dict[str, dict[str, Node]], links: set[tuple[str, str]]) -> Picture:
    tallest = max(len(c) for c in columns.values()) or 1
    height = PAD * 2 + 24 + tallest * (BOX_H + GAP_Y)
    placed: dict[str, Node] = {}
    for index, name in enumerate(COLUMNS):
        nodes = list(columns[name].values())
        x = PAD + index * (BOX_W + GAP_X)
        top = PAD + 24 + (tallest - len(nodes)) * (BOX_H + GAP_Y) // 2
        for row, node in enumerate(nodes):
            placed[node.key] = Node(**{**node.__dict__, "x": x, "y": top + row * (BOX_H + GAP_Y)})
    edges = tuple(
        Edge(a.x + BOX_W, a.y + BOX_H // 2, b.x, b.y + BOX_H // 2)
        for a, b in ((placed.get(s), placed.get(t)) for s, t in sorted(links))
        if a is not None and b is not None
    )
    width = PAD * 2 + len(COLUMNS) * BOX_W + (len(COLUMNS) - 1) * GAP_X
    headings = tuple((name, PAD + i * (BOX_W + GAP_X)) for i, name in enumerate(COLUMNS))
    return Picture(width, height, tuple(placed.values()), edges, headings)

"""`defender import`: Defender's images and findings into the mapping service, by digest.

First the plans: with neither Defender for Containers nor Defender CSPM on, Resource Graph has
no container findings and an empty import would look like "all clean"; that is an error naming
the fix. Then one read of Resource Graph, then the records go to `POST /v1/links/defender` in
bodies under the service's size limit, all under one import id; the last call (`complete`) lets
the service drop what Defender no longer shows in these subscriptions. The service compares
each record with what it holds, so a second import of the same view changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from container_mapping.defender.arm import DefenderError, explained
from container_mapping.defender.graph import Seen, Snapshot

ROUTE = "/v1/links/defender"
PLANS = ("Containers", "CloudPosture")  # either one scans registry images
MAX_BATCH_BYTES = 512 * 1024  # half the service's default body limit


@dataclass(frozen=True)
class Imported:
    import_id: str
    counts: dict[str, dict[str, int]]
    batches: int


def check_plans(security: Any, subscription: str) -> None:
    """Fail with the fix when no plan that scans container images is on."""
    tiers = {}
    for plan in PLANS:
        with explained(f"reading Defender plan {plan}", subscription):
            pricing = security.pricings.get(f"subscriptions/{subscription}", plan)
        tiers[plan] = str(getattr(pricing, "pricing_tier", "") or "").lower()
    if "standard" not in tiers.values():
        raise DefenderError(
            f"Defender for Containers and Defender CSPM are both off in subscription "
            f"{subscription}, so Defender has no image findings: turn one on "
            f"(az security pricing create -n Containers --tier standard --subscription "
            f"{subscription}) and import again once it has scanned"
        )


def bodies(
    snapshot: Snapshot, subscriptions: Sequence[str], import_id: str, limit: int = MAX_BATCH_BYTES
) -> Iterator[dict[str, Any]]:
    """Request bodies of whole records, each under `limit` bytes, the last one `complete`."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    head = {"importId": import_id, "subscriptions": list(subscriptions), "importedAt": now}
    batch: dict[str, list[dict[str, Any]]] = {"images": [], "running": []}
    size = 0
    records = [("images", s) for s in snapshot.images] + [("running", s) for s in snapshot.running]
    for part, seen in records:
        record = seen.to_dict()
        cost = len(json.dumps(record)) + 1
        if size + cost > limit and (batch["images"] or batch["running"]):
            yield {**head, **batch, "complete": False}
            batch, size = {"images": [], "running": []}, 0
        batch[part].append(record)
        size += cost
    yield {**head, **batch, "complete": True}


def post(client: Any, snapshot: Snapshot, subscriptions: Sequence[str]) -> Imported:
    import_id = str(uuid.uuid4())
    totals: dict[str, dict[str, int]] = {}
    sent = 0
    for body in bodies(snapshot, subscriptions, import_id):
        answer = client.post(ROUTE, body)
        sent += 1
        for part in ("images", "running"):
            for name, value in (answer.get(part) or {}).items():
                totals.setdefault(part, {}).setdefault(name, 0)
                totals[part][name] += int(value)
    return Imported(import_id, totals, sent)


def summary(snapshot: Snapshot, imported: Imported) -> str:
    def part(name: str, records: tuple[Seen, ...]) -> str:
        c = imported.counts.get(name, {})
        return (
            f"{len(records)} {name} ({c.get('added', 0)} added, {c.get('updated', 0)} changed, "
            f"{c.get('unchanged', 0)} unchanged, {c.get('removed', 0)} removed)"
        )

    return (
        f"imported {part('images', snapshot.images)} and {part('running', snapshot.running)} "
        f"from {snapshot.rows} findings in {snapshot.pages} pages"
        + (f"; {snapshot.skipped} rows without a digest skipped" if snapshot.skipped else "")
    )

"""Defender's view of container images, read through Azure Resource Graph.

Defender publishes one sub-assessment per vulnerability per image in the `securityresources`
table: under the registry recommendation (assessment key `c0b7cfc6-…`, the row's id starts with
the registry's ARM id) and under the running-images recommendation (`c609cf0f-…`, the id starts
with the cluster's). Each row's `artifactDetails` names the image (registry host, repository,
digest, tags, media type, last push); its `status` carries the severity and whether the finding
stands (`Unhealthy`). Rows are folded here into one record per image and place, with counts per
severity, so what reaches the mapping service grows with images, not with vulnerabilities.
Every page is read (`$skipToken`). Rows without a usable digest are counted, not guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from container_mapping.defender.arm import DefenderError, explained

REGISTRY_KEY = "c0b7cfc6-3172-465a-b378-53c7ff2cc0d5"
RUNTIME_KEY = "c609cf0f-71ab-41e9-a3c6-9a1f7fe1b8d5"
PAGE = 1000  # Resource Graph's largest page
SEVERITIES = ("critical", "high", "medium", "low")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_ASSESSMENT = re.compile(r"(?i)/providers/Microsoft\.Security/assessments/([^/]+)/")

QUERY = """securityresources
| where type =~ "microsoft.security/assessments/subassessments"
| extend assessmentKey = extract(@"(?i)providers/Microsoft.Security/assessments/([^/]*)", 1, id)
| where assessmentKey == "{key}"
| project id, subscriptionId, status = properties.status,
    artifactDetails = properties.additionalData.artifactDetails"""


@dataclass(frozen=True)
class Counts:
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.critical + self.high + self.medium + self.low + self.other

    def to_dict(self) -> dict[str, int]:
        return {**{s: getattr(self, s) for s in (*SEVERITIES, "other")}, "total": self.total}


@dataclass(frozen=True)
class Seen:
    """One image in one place: a registry (`kind="registry"`) or a cluster (`"cluster"`)."""

    kind: str
    resource_id: str  # the registry's or the cluster's ARM id
    subscription: str
    registry: str
    repository: str
    digest: str
    tags: tuple[str, ...] = ()
    media_type: str | None = None
    last_pushed: str | None = None
    findings: Counts = field(default_factory=Counts)

    @property
    def place(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "subscription": self.subscription,
            "name": self.place,
            "registry": self.registry,
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "mediaType": self.media_type,
            "lastPushed": self.last_pushed,
            "findings": self.findings.to_dict(),
        }


@dataclass(frozen=True)
class Snapshot:
    images: tuple[Seen, ...]
    running: tuple[Seen, ...]
    rows: int
    skipped: int
    pages: int


def read(client: Any, subscriptions: Sequence[str]) -> Snapshot:
    """Registry findings and running images of `subscriptions`, every page of both."""
    images, rows_a, skipped_a, pages_a = _fold(client, subscriptions, REGISTRY_KEY, "registry")
    running, rows_b, skipped_b, pages_b = _fold(client, subscriptions, RUNTIME_KEY, "cluster")
    return Snapshot(images, running, rows_a + rows_b, skipped_a + skipped_b, pages_a + pages_b)


def _fold(
    client: Any, subscriptions: Sequence[str], key: str, kind: str
) -> tuple[tuple[Seen, ...], int, int, int]:
    """One record per place and image; per row only its counts, tags and push time move."""
    found: dict[tuple[str, str, str, str], _Place] = {}
    rows = skipped = 0
    pager = Pages(client, subscriptions, QUERY.format(key=key))
    for row in pager:
        rows += 1
        identity = _identity(row)
        if identity is None:
            skipped += 1
            continue
        place = found.get(identity.key)
        if place is None:
            seen = parse_row(row, kind)
            if seen is None:
                skipped += 1
                continue
            place = found[identity.key] = _Place(seen)
        place.add(identity.artifact, _status(row))
    return tuple(p.seen() for p in found.values()), rows, skipped, pager.pages


@dataclass(frozen=True)
class _Identity:
    key: tuple[str, str, str, str]
    artifact: dict[str, Any]


class _Place:
    """What the rows of one image in one place add up to, while they are read."""

    def __init__(self, first: Seen) -> None:
        self.first = first
        self.tags: set[str] = set(first.tags)
        self.pushed = first.last_pushed
        self.counts = dict.fromkeys((*SEVERITIES, "other"), 0)

    def add(self, artifact: dict[str, Any], severity: str | None) -> None:
        more = artifact.get("tags")
        if isinstance(more, list) and len(self.tags) < 100:
            self.tags.update(str(t)[:128] for t in more if t)
        pushed = _text(artifact.get("lastPushedToRegistryUTC"))
        if pushed and (self.pushed is None or pushed > self.pushed):
            self.pushed = pushed
        if severity is not None:
            name = severity.lower()
            self.counts[name if name in SEVERITIES else "other"] += 1

    def seen(self) -> Seen:
        tags = tuple(sorted(self.tags))[:100]
        return replace(self.first, tags=tags, last_pushed=self.pushed,
                       findings=Counts(**self.counts))  # fmt: skip


class Pages:
    """The rows of one query, page after page until Resource Graph gives no `$skipToken`."""

    def __init__(self, client: Any, subscriptions: Sequence[str], query: str) -> None:
        self.client = client
        self.subscriptions = list(subscriptions)
        self.query = query
        self.pages = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        token: str | None = None
        while True:
            options = QueryRequestOptions(skip_token=token, top=PAGE, result_format="objectArray")
            request = QueryRequest(
                subscriptions=self.subscriptions, query=self.query, options=options
            )
            with explained("querying Azure Resource Graph", ", ".join(self.subscriptions)):
                answer = self.client.resources(request)
            self.pages += 1
            yield from _objects(answer.data)
            token = answer.skip_token
            if not token:
                _check_whole(answer)
                return


def _check_whole(answer: Any) -> None:
    """Resource Graph flags an answer it cut short without a way to page on."""
    if str(answer.result_truncated).lower() == "true":
        raise DefenderError(
            "Azure Resource Graph cut the answer short and gave no $skipToken to read on; "
            "import fewer subscriptions at a time (--subscription)"
        )


def _objects(data: Any) -> Iterable[dict[str, Any]]:
    return [row for row in (data or []) if isinstance(row, dict)]


def _identity(row: dict[str, Any]) -> _Identity | None:
    artifact = row.get("artifactDetails")
    resource_id = _resource_id(str(row.get("id") or ""))
    if not isinstance(artifact, dict) or resource_id is None:
        return None
    digest = str(artifact.get("digest") or "").lower()
    registry = str(artifact.get("registryHost") or "").lower()[:255]
    repository = str(artifact.get("repositoryName") or "")[:255]
    if not (_DIGEST.fullmatch(digest) and registry and repository):
        return None
    return _Identity((resource_id.lower(), registry, repository, digest), artifact)


def parse_row(row: dict[str, Any], kind: str) -> Seen | None:
    """The image a sub-assessment row names, or None when it names none usable."""
    identity = _identity(row)
    if identity is None:
        return None
    artifact = identity.artifact
    resource_id = _resource_id(str(row["id"])) or ""
    _, registry, repository, digest = identity.key
    tags = artifact.get("tags")
    return Seen(
        kind=kind,
        resource_id=resource_id,
        subscription=str(row.get("subscriptionId") or _subscription(resource_id)),
        registry=registry,
        repository=repository,
        digest=digest,
        tags=tuple(sorted(str(t)[:128] for t in tags if t))[:100] if isinstance(tags, list) else (),
        media_type=_text(artifact.get("mediaType")),
        last_pushed=_text(artifact.get("lastPushedToRegistryUTC")),
    )


def _status(row: dict[str, Any]) -> str | None:
    """The severity of a finding that stands; None for healthy, exempt or not applicable."""
    status = row.get("status")
    if not isinstance(status, dict) or str(status.get("code", "")).lower() != "unhealthy":
        return None
    return str(status.get("severity") or "other")


def _resource_id(row_id: str) -> str | None:
    match = _ASSESSMENT.search(row_id)
    return row_id[: match.start()] if match else None


def _subscription(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def _text(value: Any) -> str | None:
    return str(value)[:255] if value not in (None, "") else None

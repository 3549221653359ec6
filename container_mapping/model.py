"""The domain: what a job is, what it pushed, and the report that ties the two.

Everything is a frozen dataclass checked at construction. `MappingReport.to_dict` /
`from_dict` is the versioned wire format of `docs/mapping-report.schema.json`; the tests
round-trip it through the schema.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

from container_mapping import __version__
from container_mapping.errors import ConfigError
from container_mapping.reference import ImageReference, check_digest

SCHEMA_VERSION = "1.1"
SCHEMA_ID = "https://container-mapping.dev/schemas/mapping-report/1.1"


class Attribution(str, enum.Enum):
    """Whether an image's own labels say it was built by the current run."""

    MATCH = "match"  # labels name this run (or this commit of this repository)
    OTHER_RUN = "other-run"  # labels name another run: never attributed to this one
    UNKNOWN = "unknown"  # no label to compare (or not in a pipeline): attributed by time alone


class Basis(str, enum.Enum):
    """What an attribution rests on (schema 1.1), strongest first."""

    LABEL = "label"  # the image's own labels name the run (or another run)
    PROCESS = "process"  # the client that pushed it ran in this job (its environment said so)
    WINDOW_ONLY = "window-only"  # pushed inside the window, and no other job overlapped it
    AMBIGUOUS = "ambiguous"  # another job used the same engine in the window; nothing decides


class Verification(str, enum.Enum):
    """What the registry said when asked for the manifest digest (`--verify`)."""

    NOT_CHECKED = "not-checked"
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    UNAVAILABLE = "unavailable"


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, the form every timestamp of the wire format takes."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


#: From Python 3.11 `fromisoformat` reads `Z` and fractions of any length itself.
_ISO_READS_RFC3339 = sys.version_info >= (3, 11)


def parse_time(text: str) -> datetime:
    """Parse RFC 3339, including Docker's nanosecond fractions, into an aware datetime.

    On Python 3.11 and later the usual form is read by `fromisoformat` alone, which gives the
    same answer as the portable path below (a test compares them) in a third of the time; the
    service parses fifteen times a report. Anything it does not take goes the portable way,
    which also words the errors.
    """
    if _ISO_READS_RFC3339:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return parse_time_portably(text)


def parse_time_portably(text: str) -> datetime:
    """`parse_time` on every Python this package supports (3.9 and later)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, tail = value.partition(".")
    if dot:  # fromisoformat takes at most 6 fractional digits before Python 3.11
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise ConfigError(f"invalid time {text!r}: expected RFC 3339") from err
    if parsed.tzinfo is None:
        raise ConfigError(f"invalid time {text!r}: an RFC 3339 time needs an offset or 'Z'")
    return parsed


@dataclass(frozen=True)
class PipelineContext:
    """The Azure DevOps entity a job belongs to, read from the agent's variables.

    Every field is optional: `collect` also runs outside a pipeline, where none are set.
    """

    organization_url: str | None = None
    organization_id: str | None = None
    project: str | None = None
    project_id: str | None = None
    definition_id: str | None = None
    definition_name: str | None = None
    run_id: str | None = None
    run_number: str | None = None
    repository_name: str | None = None
    repository_uri: str | None = None
    repository_id: str | None = None
    repository_provider: str | None = None
    commit: str | None = None
    branch: str | None = None
    job_id: str | None = None
    job_name: str | None = None
    job_attempt: str | None = None
    plan_id: str | None = None
    host_type: str | None = None
    agent_os: str | None = None

    @property
    def in_pipeline(self) -> bool:
        return self.organization_url is not None and self.run_id is not None

    def to_dict(self) -> dict[str, str]:
        return {
            _camel(f.name): value
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineContext:
        known = {_camel(f.name): f.name for f in fields(cls)}
        return cls(**{known[k]: str(v) for k, v in data.items() if k in known})


@dataclass(frozen=True)
class PlatformManifest:
    """One platform's manifest inside a pushed index (a multi-platform image)."""

    digest: str
    platform: str  # os/architecture[/variant]

    def __post_init__(self) -> None:
        check_digest(self.digest)

    def to_dict(self) -> dict[str, str]:
        return {"digest": self.digest, "platform": self.platform}


@dataclass(frozen=True)
class ImageRecord:
    """One image a job built or pushed, with the digest the registry holds for it."""

    reference: ImageReference
    image_id: str | None
    pushed: bool
    source: str = "docker"
    pushed_at: datetime | None = None
    created: datetime | None = None
    platform: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    attribution: Attribution = Attribution.UNKNOWN
    attribution_evidence: dict[str, str] = field(default_factory=dict)
    verification: Verification = Verification.NOT_CHECKED
    registry_digest: str | None = None
    note: str | None = None
    basis: Basis = Basis.WINDOW_ONLY
    seen_by: tuple[str, ...] = ()  # every collector that saw it; `source` alone when empty
    manifests: tuple[PlatformManifest, ...] = ()  # when the digest is an index's

    def __post_init__(self) -> None:
        if not self.seen_by:
            object.__setattr__(self, "seen_by", (self.source,))
        if self.image_id is not None:
            check_digest(self.image_id)
        if self.registry_digest is not None:
            check_digest(self.registry_digest)
        if self.pushed and self.reference.tag is None and self.reference.digest is None:
            raise ConfigError(f"pushed image {self.reference} has neither tag nor digest")

    @property
    def digest(self) -> str | None:
        return self.reference.digest

    def to_dict(self) -> dict[str, Any]:
        ref = self.reference
        data: dict[str, Any] = {
            "registry": ref.registry,
            "repository": ref.repository,
            "tag": ref.tag,
            "digest": ref.digest,
            "reference": str(ref),
            "imageId": self.image_id,
            "pushed": self.pushed,
            "source": self.source,
            "pushedAt": format_time(self.pushed_at) if self.pushed_at else None,
            "created": format_time(self.created) if self.created else None,
            "platform": self.platform,
            "labels": dict(self.labels),
            "sources": list(self.seen_by),
            "attribution": {
                "status": self.attribution.value,
                "basis": self.basis.value,
                "evidence": dict(self.attribution_evidence),
            },
            "verification": {
                "status": self.verification.value,
                "registryDigest": self.registry_digest,
            },
        }
        if self.manifests:
            data["manifests"] = [m.to_dict() for m in self.manifests]
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        attribution = data.get("attribution") or {}
        verification = data.get("verification") or {}
        return cls(
            reference=ImageReference(
                data["registry"], data["repository"], data.get("tag"), data.get("digest")
            ),
            image_id=data.get("imageId"),
            pushed=bool(data["pushed"]),
            source=data.get("source", "docker"),
            pushed_at=parse_time(data["pushedAt"]) if data.get("pushedAt") else None,
            created=parse_time(data["created"]) if data.get("created") else None,
            platform=data.get("platform"),
            labels=dict(data.get("labels") or {}),
            attribution=Attribution(attribution.get("status", Attribution.UNKNOWN.value)),
            attribution_evidence=dict(attribution.get("evidence") or {}),
            verification=Verification(verification.get("status", "not-checked")),
            registry_digest=verification.get("registryDigest"),
            note=data.get("note"),
            basis=Basis(attribution.get("basis", _basis_1_0(attribution))),
            seen_by=tuple(str(s) for s in data.get("sources") or ()),
            manifests=tuple(
                PlatformManifest(str(m["digest"]), str(m["platform"]))
                for m in data.get("manifests") or ()
            ),
        )


def _basis_1_0(attribution: dict[str, Any]) -> str:
    """A 1.0 report has no basis: a verdict other than unknown came from labels."""
    status = attribution.get("status", Attribution.UNKNOWN.value)
    return Basis.WINDOW_ONLY.value if status == Attribution.UNKNOWN.value else Basis.LABEL.value


@dataclass(frozen=True)
class CollectionWindow:
    """The time span a job's images are looked for in: [since, until]."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ConfigError("collection window times must carry a time zone")
        if self.until < self.since:
            raise ConfigError(
                f"the window ends ({format_time(self.until)}) before it starts "
                f"({format_time(self.since)})"
            )


@dataclass(frozen=True)
class MappingReport:
    """What one job pushed, the job itself, and what was left out and why."""

    window: CollectionWindow
    pipeline: PipelineContext
    images: tuple[ImageRecord, ...] = ()
    skipped: tuple[ImageRecord, ...] = ()
    engine_version: str | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    tool_version: str = __version__
    warnings: tuple[str, ...] = ()  # what capture noticed; shown to the user, never sent

    @property
    def pushed(self) -> tuple[ImageRecord, ...]:
        return tuple(r for r in self.images if r.pushed)

    @property
    def ambiguous(self) -> tuple[ImageRecord, ...]:
        """Pushed records no evidence ties to this job rather than to a neighbour."""
        return tuple(r for r in self.pushed if r.basis is Basis.AMBIGUOUS)

    def for_sink(self) -> MappingReport:
        """What may leave the job: the images it pushed, nothing of another run.

        Records whose labels name another run, and images built but not pushed (on a shared
        host they may be a neighbour's), stay on the agent.
        """
        return replace(self, images=self.pushed, skipped=(), warnings=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "$schema": SCHEMA_ID,
            "schemaVersion": SCHEMA_VERSION,
            "generatedAt": format_time(self.generated_at),
            "tool": {"name": "container-mapping", "version": self.tool_version},
            "window": {
                "since": format_time(self.window.since),
                "until": format_time(self.window.until),
            },
            "engine": {"kind": "docker", "version": self.engine_version},
            "pipeline": self.pipeline.to_dict(),
            "images": [r.to_dict() for r in self.images],
            "skipped": [r.to_dict() for r in self.skipped],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MappingReport:
        version = str(data.get("schemaVersion", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ConfigError(
                f"unsupported report schemaVersion {version!r}; this tool reads {SCHEMA_VERSION}"
            )
        window = data["window"]
        return cls(
            window=CollectionWindow(parse_time(window["since"]), parse_time(window["until"])),
            pipeline=PipelineContext.from_dict(data.get("pipeline") or {}),
            images=tuple(ImageRecord.from_dict(r) for r in data.get("images") or ()),
            skipped=tuple(ImageRecord.from_dict(r) for r in data.get("skipped") or ()),
            engine_version=(data.get("engine") or {}).get("version"),
            generated_at=parse_time(data["generatedAt"]),
            tool_version=str((data.get("tool") or {}).get("version") or ""),
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)

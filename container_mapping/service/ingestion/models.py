"""Ingestion's tables and the request bodies it accepts.

`reports` holds one row per accepted report (one job attempt), with the DevOps context taken from
the caller's token; `images` one row per pushed image, looked up by `(org_id, digest)`. The
idempotency key is unique per organization: two deliveries of one report, even at the same
instant on two processes, store one row, and the second gets the first's stored answer.

The request models describe the wire formats for validation and OpenAPI; below them the domain
stays `container_mapping.model`'s frozen dataclasses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from container_mapping.errors import Error
from container_mapping.model import Attribution, Verification, parse_time
from container_mapping.service.database import Base

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

# Character classes are spelled out: pydantic's regex engine reads `\d` and `\w` as Unicode
# classes (any script's digits and letters), unlike JSON Schema, whose `\d` and `\w` are
# ASCII. A Unicode class repeated 127 times is also a large automaton that each match zeroes
# a work area for (`memset` alone fell from about 126,000 to 25,000 instructions a report).
DIGEST = r"^sha256:[a-f0-9]{64}$"
TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"


def _a_real_time(value: str) -> str:
    """The pattern admits `0000-00-00T00:00:00Z` and `…T25:61:…`; a calendar does not.

    Runs for every time of every report: its imports are the module's (an import statement in
    here cost three times the check itself).
    """
    try:
        parse_time(value)
    except Error:
        raise ValueError("not a real RFC 3339 time (UTC, with Z)") from None
    return value


#: An RFC 3339 UTC time that exists: every time a body carries.
Timestamp = Annotated[str, Field(pattern=TIME), AfterValidator(_a_real_time)]
REPOSITORY = (
    r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$"
)
TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


class ReportRow(Base):
    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key"),
        # trace's reverse questions (links migration 0002): by commit, repository, pipeline
        Index("ix_reports_org_id_commit", "org_id", "commit"),
        Index("ix_reports_org_id_repository_uri", "org_id", "repository_uri"),
        Index("ix_reports_org_id_pipeline_id", "org_id", "pipeline_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    protocol: Mapped[str] = mapped_column(String(32))  # mapping-service | defender
    subject: Mapped[str] = mapped_column(String(1024))  # the token's sub (p://org/project/pipeline)
    project_id: Mapped[str] = mapped_column(String(64))
    project_name: Mapped[Optional[str]] = mapped_column(String(256))
    pipeline_id: Mapped[str] = mapped_column(String(64))
    pipeline_name: Mapped[Optional[str]] = mapped_column(String(256))
    run_id: Mapped[str] = mapped_column(String(64))
    run_number: Mapped[Optional[str]] = mapped_column(String(256))
    repository_uri: Mapped[Optional[str]] = mapped_column(String(2048))
    repository_name: Mapped[Optional[str]] = mapped_column(String(256))
    commit: Mapped[Optional[str]] = mapped_column(String(64))
    branch: Mapped[Optional[str]] = mapped_column(String(1024))
    job_id: Mapped[Optional[str]] = mapped_column(String(64))
    job_name: Mapped[Optional[str]] = mapped_column(String(256))
    job_attempt: Mapped[Optional[str]] = mapped_column(String(16))
    plan_id: Mapped[Optional[str]] = mapped_column(String(64))
    engine_version: Mapped[Optional[str]] = mapped_column(String(128))
    tool_version: Mapped[Optional[str]] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)


class ImageRow(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_org_id_digest", "org_id", "digest"),
        # trace by reference (links migration 0002)
        Index("ix_images_org_id_repository_tag", "org_id", "repository", "tag"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    # `registry` is reserved on declarative classes: the attribute is named apart from its column
    registry_host: Mapped[str] = mapped_column("registry", String(255))
    repository: Mapped[str] = mapped_column(String(255))
    tag: Mapped[Optional[str]] = mapped_column(String(128))
    digest: Mapped[Optional[str]] = mapped_column(String(71))
    image_id: Mapped[Optional[str]] = mapped_column(String(71))
    pushed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    platform: Mapped[Optional[str]] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(String(16), default="observed")
    attribution: Mapped[Optional[str]] = mapped_column(String(16))
    verification: Mapped[Optional[str]] = mapped_column(String(16))


# --- request bodies ------------------------------------------------------------------------
# Unknown keys are ignored, not refused: a 1.x report of a later minor version may add fields.

_LAX = ConfigDict(extra="ignore")


class AttributionIn(BaseModel):
    model_config = _LAX
    status: Attribution
    evidence: dict[str, str] = {}


class VerificationIn(BaseModel):
    model_config = _LAX
    status: Verification
    registryDigest: Optional[str] = Field(default=None, pattern=DIGEST)  # noqa: N815


class ImageIn(BaseModel):
    model_config = _LAX
    registry: str = Field(min_length=1, max_length=255)
    repository: str = Field(min_length=1, max_length=255, pattern=REPOSITORY)
    tag: Optional[str] = Field(pattern=TAG)
    digest: Optional[str] = Field(pattern=DIGEST)
    reference: str = Field(max_length=1024)
    imageId: Optional[str] = Field(pattern=DIGEST)  # noqa: N815
    pushed: bool
    source: str = Field(min_length=1, max_length=32)
    pushedAt: Optional[Timestamp] = None  # noqa: N815
    created: Optional[Timestamp] = None
    platform: Optional[str] = Field(default=None, max_length=64)
    labels: dict[str, str] = {}
    attribution: AttributionIn
    verification: VerificationIn
    note: Optional[str] = Field(default=None, max_length=4096)


class ToolIn(BaseModel):
    model_config = _LAX
    name: str = Field(pattern=r"^container-mapping$")
    version: str = Field(min_length=1, max_length=64)


class WindowIn(BaseModel):
    model_config = _LAX
    since: Timestamp
    until: Timestamp


class EngineIn(BaseModel):
    model_config = _LAX
    kind: str = Field(pattern=r"^docker$")
    version: Optional[str] = Field(max_length=128)


_SHORT = Field(default=None, max_length=1024)


class PipelineIn(BaseModel):
    """The job's own view of its context; checked against the token, never stored over it."""

    model_config = _LAX
    organizationUrl: Optional[str] = _SHORT  # noqa: N815
    organizationId: Optional[str] = _SHORT  # noqa: N815
    project: Optional[str] = _SHORT
    projectId: Optional[str] = _SHORT  # noqa: N815
    definitionId: Optional[str] = _SHORT  # noqa: N815
    definitionName: Optional[str] = _SHORT  # noqa: N815
    runId: Optional[str] = _SHORT  # noqa: N815
    runNumber: Optional[str] = _SHORT  # noqa: N815
    repositoryName: Optional[str] = _SHORT  # noqa: N815
    repositoryUri: Optional[str] = _SHORT  # noqa: N815
    repositoryId: Optional[str] = _SHORT  # noqa: N815
    repositoryProvider: Optional[str] = _SHORT  # noqa: N815
    commit: Optional[str] = _SHORT
    branch: Optional[str] = _SHORT
    jobId: Optional[str] = _SHORT  # noqa: N815
    jobName: Optional[str] = _SHORT  # noqa: N815
    jobAttempt: Optional[str] = _SHORT  # noqa: N815
    planId: Optional[str] = _SHORT  # noqa: N815
    hostType: Optional[str] = _SHORT  # noqa: N815
    agentOs: Optional[str] = _SHORT  # noqa: N815


class ReportIn(BaseModel):
    """`docs/mapping-report.schema.json`, version 1.x. `skipped` is accepted and never stored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    schema_: Optional[str] = Field(default=None, alias="$schema")
    schemaVersion: str = Field(pattern=r"^1\.[0-9]+$")  # noqa: N815
    generatedAt: Timestamp  # noqa: N815
    tool: ToolIn
    window: WindowIn
    engine: EngineIn
    pipeline: PipelineIn
    images: list[ImageIn] = Field(max_length=10_000)
    skipped: list[dict[str, Any]] = []


class DefenderIn(BaseModel):
    """Defender for Cloud's container-mapping body, as its task (and ours) sends it."""

    model_config = _LAX
    dockerVersion: str = Field(default="", max_length=256)  # noqa: N815
    dockerEvents: list[str] = Field(default=[], max_length=10_000)  # noqa: N815
    dockerImages: list[str] = Field(default=[], max_length=10_000)  # noqa: N815


class ReportAccepted(BaseModel):
    """The answer to an accepted report; a retried Idempotency-Key gets this same answer."""

    id: str
    organization: str
    receivedAt: str  # noqa: N815
    images: int


class ErrorBody(BaseModel):
    error: str
    field: Optional[str] = None

"""The table of Defender's records and the body `defender import` posts.

One row per image per place: a registry (`kind = registry`, from the registry vulnerability
recommendation) or a cluster (`kind = cluster`, from the running-images one), with open
findings by severity and a fingerprint of the record, so an import rewrites only rows whose
content changed. `defender_import_seen` notes which rows the import under way has met, so its
last call can drop the rows Defender no longer shows without touching the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy import UniqueConstraint as Unique
from sqlalchemy.orm import Mapped, mapped_column

from container_mapping.service.database import Base
from container_mapping.service.ingestion.models import DIGEST, REPOSITORY, TIME
from container_mapping.service.links.models import REGISTRY

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
MAX_RECORDS = 20_000
UUID = r"^[0-9a-fA-F-]{36}$"
RESOURCE_ID = r"^/subscriptions/[^/]+/.+$"


class DefenderImageRow(Base):
    __tablename__ = "defender_images"
    __table_args__ = (
        Unique(
            "org_id",
            "kind",
            "resource_id",
            "registry_host",
            "repository",
            "digest",
            name="uq_defender_images_place",
        ),
        Index("ix_defender_images_org_id_digest", "org_id", "digest"),
        Index("ix_defender_images_org_id_subscription", "org_id", "subscription"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(512))
    subscription: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    registry_host: Mapped[str] = mapped_column(String(255))
    repository: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(71))
    tags: Mapped[list[str]] = mapped_column(JSON)
    media_type: Mapped[Optional[str]] = mapped_column(String(255))
    last_pushed: Mapped[Optional[str]] = mapped_column(String(40))
    critical: Mapped[int] = mapped_column(Integer)
    high: Mapped[int] = mapped_column(Integer)
    medium: Mapped[int] = mapped_column(Integer)
    low: Mapped[int] = mapped_column(Integer)
    other: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImportSeenRow(Base):
    __tablename__ = "defender_import_seen"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    import_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    row_id: Mapped[int] = mapped_column(
        _BIG_ID, ForeignKey("defender_images.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- the request body ----------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid")
_COUNT = Field(default=0, ge=0, le=1_000_000)


class FindingsIn(BaseModel):
    model_config = _STRICT
    critical: int = _COUNT
    high: int = _COUNT
    medium: int = _COUNT
    low: int = _COUNT
    other: int = _COUNT
    total: Optional[int] = Field(default=None, ge=0)  # derived; accepted and ignored


class SeenIn(BaseModel):
    model_config = _STRICT
    resourceId: str = Field(max_length=512, pattern=RESOURCE_ID)  # noqa: N815
    subscription: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    registry: str = Field(min_length=1, max_length=255, pattern=REGISTRY)
    repository: str = Field(min_length=1, max_length=255, pattern=REPOSITORY)
    digest: str = Field(pattern=DIGEST)
    tags: list[str] = Field(default=[], max_length=100)
    mediaType: Optional[str] = Field(default=None, max_length=255)  # noqa: N815
    lastPushed: Optional[str] = Field(default=None, max_length=40)  # noqa: N815
    findings: FindingsIn = FindingsIn()


class DefenderLinkIn(BaseModel):
    """One part of one import; the part with `complete` ends it."""

    model_config = ConfigDict(extra="ignore")
    importId: str = Field(pattern=UUID)  # noqa: N815
    subscriptions: list[str] = Field(min_length=1, max_length=1000)
    importedAt: str = Field(pattern=TIME)  # noqa: N815
    images: list[SeenIn] = Field(default=[], max_length=MAX_RECORDS)
    running: list[SeenIn] = Field(default=[], max_length=MAX_RECORDS)
    complete: bool = False


class Changes(BaseModel):
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


class DefenderLinked(BaseModel):
    importId: str  # noqa: N815
    complete: bool
    images: Changes
    running: Changes


Kind = Literal["registry", "cluster"]

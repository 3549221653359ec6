"""The links' tables and the bodies `link registry` and `link pods` post.

`registry_artifacts` holds what a registry crawl found, one row per manifest (an image, an
index, or an index's platform child with its parent's digest), with the labels of its config
blob and what they claim (`evidence: label`). `workloads` holds the containers of the last pod
snapshot of each cluster, and `cluster_snapshots` one row per cluster, which a new snapshot
locks while it replaces the old one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from container_mapping.service.database import Base
from container_mapping.service.ingestion.models import DIGEST, REPOSITORY, TAG, TIME

_TAG_RE = re.compile(TAG)
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
REGISTRY = r"^[A-Za-z0-9.-]+(:[0-9]+)?$|^\[[0-9a-fA-F:]+\](:[0-9]+)?$"
MAX_ARTIFACTS = 100_000
MAX_CONTAINERS = 100_000


class ArtifactRow(Base):
    __tablename__ = "registry_artifacts"
    __table_args__ = (
        # One row per place a manifest holds in a repository: tagged itself (parent ""), and
        # once more as a platform child of each index that lists it.
        UniqueConstraint(
            "org_id",
            "registry",
            "repository",
            "digest",
            "parent_digest",
            name="uq_registry_artifacts_place",
        ),
        Index("ix_registry_artifacts_org_id_digest", "org_id", "digest"),
        Index("ix_registry_artifacts_org_id_parent_digest", "org_id", "parent_digest"),
        # Partial: most images carry no such label, and an index full of NULLs looks useless
        # to the planner (SQLite's statistics count them as one value).
        Index(
            "ix_registry_artifacts_org_id_label_commit",
            "org_id",
            "label_commit",
            sqlite_where=text("label_commit IS NOT NULL"),
            postgresql_where=text("label_commit IS NOT NULL"),
        ),
        Index(
            "ix_registry_artifacts_org_id_label_repository",
            "org_id",
            "label_repository",
            sqlite_where=text("label_repository IS NOT NULL"),
            postgresql_where=text("label_repository IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    # `registry` is reserved on declarative classes: the attribute is named apart from its column
    registry_host: Mapped[str] = mapped_column("registry", String(255))
    repository: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(71))
    media_type: Mapped[str] = mapped_column(String(255))
    tags: Mapped[list[str]] = mapped_column(JSON)
    parent_digest: Mapped[str] = mapped_column(String(71), default="", server_default="")
    platform_os: Mapped[Optional[str]] = mapped_column(String(64))
    platform_architecture: Mapped[Optional[str]] = mapped_column(String(64))
    platform_variant: Mapped[Optional[str]] = mapped_column(String(64))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    label_repository: Mapped[Optional[str]] = mapped_column(String(512))
    label_commit: Mapped[Optional[str]] = mapped_column(String(512))
    label_run_id: Mapped[Optional[str]] = mapped_column(String(64))
    label_collection: Mapped[Optional[str]] = mapped_column(String(512))
    evidence: Mapped[Optional[str]] = mapped_column(String(16))  # "label" when labels claim
    crawled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SnapshotRow(Base):
    __tablename__ = "cluster_snapshots"
    __table_args__ = (UniqueConstraint("org_id", "cluster"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    cluster: Mapped[str] = mapped_column(String(253))
    snapshot_id: Mapped[str] = mapped_column(String(36))
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    containers: Mapped[int] = mapped_column(Integer)


class WorkloadRow(Base):
    __tablename__ = "workloads"
    __table_args__ = (
        Index("ix_workloads_org_id_digest", "org_id", "digest"),
        Index("ix_workloads_org_id_cluster", "org_id", "cluster"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    cluster: Mapped[str] = mapped_column(String(253))
    snapshot_id: Mapped[str] = mapped_column(String(36))
    namespace: Mapped[str] = mapped_column(String(253))
    pod: Mapped[str] = mapped_column(String(253))
    owner_kind: Mapped[str] = mapped_column(String(64))
    owner_name: Mapped[str] = mapped_column(String(253))
    owner_inferred: Mapped[bool] = mapped_column(Boolean)
    container: Mapped[str] = mapped_column(String(253))
    container_kind: Mapped[str] = mapped_column(String(16))
    image: Mapped[str] = mapped_column(String(1024))
    image_id: Mapped[Optional[str]] = mapped_column(String(1024))
    digest: Mapped[Optional[str]] = mapped_column(String(71))
    resolvable: Mapped[bool] = mapped_column(Boolean)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- request bodies ------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid")
_NAME = Field(min_length=1, max_length=253)


class PlatformIn(BaseModel):
    model_config = _STRICT
    os: str = Field(min_length=1, max_length=64)
    architecture: str = Field(min_length=1, max_length=64)
    variant: Optional[str] = Field(default=None, max_length=64)


class ArtifactIn(BaseModel):
    model_config = _STRICT
    repository: str = Field(min_length=1, max_length=255, pattern=REPOSITORY)
    digest: str = Field(pattern=DIGEST)
    mediaType: str = Field(min_length=1, max_length=255)  # noqa: N815
    tags: list[str] = Field(default=[], max_length=10_000)
    parentDigest: Optional[str] = Field(default=None, pattern=DIGEST)  # noqa: N815
    platform: Optional[PlatformIn] = None
    labels: dict[str, str] = Field(default={}, max_length=256)

    def checked_tags(self) -> list[str]:
        return [t for t in self.tags if _TAG_RE.fullmatch(t)]


class RegistryLinkIn(BaseModel):
    """One crawl of some repositories of one registry; each listed repository is replaced."""

    model_config = ConfigDict(extra="ignore")
    registry: str = Field(min_length=1, max_length=255, pattern=REGISTRY)
    crawledAt: str = Field(pattern=TIME)  # noqa: N815
    repositories: list[str] = Field(max_length=10_000)
    artifacts: list[ArtifactIn] = Field(max_length=MAX_ARTIFACTS)
    problems: list[str] = Field(default=[], max_length=10_000)


class ContainerIn(BaseModel):
    model_config = _STRICT
    namespace: str = _NAME
    pod: str = _NAME
    ownerKind: str = Field(min_length=1, max_length=64)  # noqa: N815
    ownerName: str = _NAME  # noqa: N815
    ownerInferred: bool = False  # noqa: N815
    container: str = _NAME
    containerKind: str = Field(pattern=r"^(regular|init|ephemeral)$")  # noqa: N815
    image: str = Field(max_length=1024)
    imageId: Optional[str] = Field(default=None, max_length=1024)  # noqa: N815
    digest: Optional[str] = Field(default=None, pattern=DIGEST)
    resolvable: bool


class PodsLinkIn(BaseModel):
    """One snapshot of a cluster's pods; it replaces the cluster's previous one."""

    model_config = ConfigDict(extra="ignore")
    cluster: str = _NAME
    takenAt: str = Field(pattern=TIME)  # noqa: N815
    containers: list[ContainerIn] = Field(max_length=MAX_CONTAINERS)


class RegistryLinked(BaseModel):
    registry: str
    repositories: int
    artifacts: int


class PodsLinked(BaseModel):
    cluster: str
    snapshotId: str  # noqa: N815
    containers: int
    resolvable: int

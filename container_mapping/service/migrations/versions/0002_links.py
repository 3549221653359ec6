"""registry artifacts, cluster snapshots, workloads; trace indexes

Revision ID: 0002_links
Revises: 0001_ingestion
Create Date: 2026-11-27 22:26:02.456574
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_links"
down_revision = "0001_ingestion"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_snapshots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("cluster", sa.String(length=253), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("containers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_cluster_snapshots_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster_snapshots")),
        sa.UniqueConstraint("org_id", "cluster", name=op.f("uq_cluster_snapshots_org_id_cluster")),
    )
    op.create_table(
        "registry_artifacts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("registry", sa.String(length=255), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("parent_digest", sa.String(length=71), server_default="", nullable=False),
        sa.Column("platform_os", sa.String(length=64), nullable=True),
        sa.Column("platform_architecture", sa.String(length=64), nullable=True),
        sa.Column("platform_variant", sa.String(length=64), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("label_repository", sa.String(length=512), nullable=True),
        sa.Column("label_commit", sa.String(length=512), nullable=True),
        sa.Column("label_run_id", sa.String(length=64), nullable=True),
        sa.Column("label_collection", sa.String(length=512), nullable=True),
        sa.Column("evidence", sa.String(length=16), nullable=True),
        sa.Column("crawled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_registry_artifacts_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_artifacts")),
        sa.UniqueConstraint(
            "org_id",
            "registry",
            "repository",
            "digest",
            "parent_digest",
            name="uq_registry_artifacts_place",
        ),
    )
    with op.batch_alter_table("registry_artifacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_registry_artifacts_org_id_digest", ["org_id", "digest"], unique=False
        )
        for column in ("label_commit", "label_repository"):  # partial: most rows have none
            batch_op.create_index(
                f"ix_registry_artifacts_org_id_{column}",
                ["org_id", column],
                unique=False,
                sqlite_where=sa.text(f"{column} IS NOT NULL"),
                postgresql_where=sa.text(f"{column} IS NOT NULL"),
            )
        batch_op.create_index(
            "ix_registry_artifacts_org_id_parent_digest", ["org_id", "parent_digest"], unique=False
        )

    op.create_table(
        "workloads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("cluster", sa.String(length=253), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("pod", sa.String(length=253), nullable=False),
        sa.Column("owner_kind", sa.String(length=64), nullable=False),
        sa.Column("owner_name", sa.String(length=253), nullable=False),
        sa.Column("owner_inferred", sa.Boolean(), nullable=False),
        sa.Column("container", sa.String(length=253), nullable=False),
        sa.Column("container_kind", sa.String(length=16), nullable=False),
        sa.Column("image", sa.String(length=1024), nullable=False),
        sa.Column("image_id", sa.String(length=1024), nullable=True),
        sa.Column("digest", sa.String(length=71), nullable=True),
        sa.Column("resolvable", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_workloads_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workloads")),
    )
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.create_index("ix_workloads_org_id_cluster", ["org_id", "cluster"], unique=False)
        batch_op.create_index("ix_workloads_org_id_digest", ["org_id", "digest"], unique=False)

    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(
            "ix_images_org_id_repository_tag", ["org_id", "repository", "tag"], unique=False
        )

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_org_id_commit", ["org_id", "commit"], unique=False)
        batch_op.create_index(
            "ix_reports_org_id_pipeline_id", ["org_id", "pipeline_id"], unique=False
        )
        batch_op.create_index(
            "ix_reports_org_id_repository_uri", ["org_id", "repository_uri"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_org_id_repository_uri")
        batch_op.drop_index("ix_reports_org_id_pipeline_id")
        batch_op.drop_index("ix_reports_org_id_commit")

    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_org_id_repository_tag")

    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.drop_index("ix_workloads_org_id_digest")
        batch_op.drop_index("ix_workloads_org_id_cluster")

    op.drop_table("workloads")
    with op.batch_alter_table("registry_artifacts", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_artifacts_org_id_parent_digest")
        batch_op.drop_index("ix_registry_artifacts_org_id_label_repository")
        batch_op.drop_index("ix_registry_artifacts_org_id_label_commit")
        batch_op.drop_index("ix_registry_artifacts_org_id_digest")

    op.drop_table("registry_artifacts")
    op.drop_table("cluster_snapshots")

"""organizations, reports and images

Revision ID: 0001_ingestion
Revises: (none)
Create Date: 2026-11-27 22:22:51.244520
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ingestion"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("protocol", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("project_name", sa.String(length=256), nullable=True),
        sa.Column("pipeline_id", sa.String(length=64), nullable=False),
        sa.Column("pipeline_name", sa.String(length=256), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("run_number", sa.String(length=256), nullable=True),
        sa.Column("repository_uri", sa.String(length=2048), nullable=True),
        sa.Column("repository_name", sa.String(length=256), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("branch", sa.String(length=1024), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("job_name", sa.String(length=256), nullable=True),
        sa.Column("job_attempt", sa.String(length=16), nullable=True),
        sa.Column("plan_id", sa.String(length=64), nullable=True),
        sa.Column("engine_version", sa.String(length=128), nullable=True),
        sa.Column("tool_version", sa.String(length=64), nullable=True),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_reports_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint(
            "org_id", "idempotency_key", name=op.f("uq_reports_org_id_idempotency_key")
        ),
    )
    op.create_table(
        "images",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("registry", sa.String(length=255), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=True),
        sa.Column("digest", sa.String(length=71), nullable=True),
        sa.Column("image_id", sa.String(length=71), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("platform", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.String(length=16), nullable=False),
        sa.Column("attribution", sa.String(length=16), nullable=True),
        sa.Column("verification", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_images_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index("ix_images_org_id_digest", ["org_id", "digest"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_report_id"))
        batch_op.drop_index("ix_images_org_id_digest")

    op.drop_table("images")
    op.drop_table("reports")
    op.drop_table("organizations")

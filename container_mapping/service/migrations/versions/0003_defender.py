"""defender images and import bookkeeping

Revision ID: 0003_defender
Revises: 0002_links
Create Date: 2026-11-27 22:46:32.212373
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_defender"
down_revision = "0002_links"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "defender_images",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.String(length=512), nullable=False),
        sa.Column("subscription", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("registry_host", sa.String(length=255), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=True),
        sa.Column("last_pushed", sa.String(length=40), nullable=True),
        sa.Column("critical", sa.Integer(), nullable=False),
        sa.Column("high", sa.Integer(), nullable=False),
        sa.Column("medium", sa.Integer(), nullable=False),
        sa.Column("low", sa.Integer(), nullable=False),
        sa.Column("other", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_defender_images_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_defender_images")),
        sa.UniqueConstraint(
            "org_id",
            "kind",
            "resource_id",
            "registry_host",
            "repository",
            "digest",
            name="uq_defender_images_place",
        ),
    )
    with op.batch_alter_table("defender_images", schema=None) as batch_op:
        batch_op.create_index(
            "ix_defender_images_org_id_digest", ["org_id", "digest"], unique=False
        )
        batch_op.create_index(
            "ix_defender_images_org_id_subscription", ["org_id", "subscription"], unique=False
        )

    op.create_table(
        "defender_import_seen",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_defender_import_seen_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["row_id"],
            ["defender_images.id"],
            name=op.f("fk_defender_import_seen_row_id_defender_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "import_id", "row_id", name=op.f("pk_defender_import_seen")
        ),
    )


def downgrade() -> None:

    op.drop_table("defender_import_seen")
    with op.batch_alter_table("defender_images", schema=None) as batch_op:
        batch_op.drop_index("ix_defender_images_org_id_subscription")
        batch_op.drop_index("ix_defender_images_org_id_digest")

    op.drop_table("defender_images")

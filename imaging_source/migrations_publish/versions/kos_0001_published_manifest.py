"""kos_published_manifest: the manifest last published per study

Revision ID: kos_0001
Revises:
Create Date: 2026-11-30 00:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kos_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("kos",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kos_published_manifest",
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("manifest_unique_id", sa.String(length=64), nullable=False),
        sa.Column("entry_uuid", sa.String(length=64), nullable=False),
        sa.Column("instance_digest", sa.String(length=40), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("study_instance_uid", name=op.f("pk_kos_published_manifest")),
    )


def downgrade() -> None:
    op.drop_table("kos_published_manifest")

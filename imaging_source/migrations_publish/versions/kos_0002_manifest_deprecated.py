"""kos_published_manifest.deprecated: when the study's manifest was deprecated

Revision ID: kos_0002
Revises: kos_0001
Create Date: 2026-12-01 00:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kos_0002"
down_revision: str | Sequence[str] | None = "kos_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kos_published_manifest") as batch:
        batch.add_column(sa.Column("deprecated", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kos_published_manifest") as batch:
        batch.drop_column("deprecated")

"""repository_document: a pending row per ITI-41 transaction, one committed per uniqueId.

Concurrent submissions of one uniqueId each keep their own pending row; the unique
constraint on ``document_unique_id`` becomes a partial unique index on committed rows.

Revision ID: repository_0002
Revises: repository_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "repository_0002"
down_revision = "repository_0001"
branch_labels = None
depends_on = None

COMMITTED = sa.text("state = 'committed'")


def upgrade() -> None:
    with op.batch_alter_table("repository_document") as batch:
        batch.drop_constraint("uq_repository_document_document_unique_id", type_="unique")
        batch.create_index("ix_repository_document_document_unique_id", ["document_unique_id"])
        batch.create_index(
            "uq_repository_document_committed_unique_id",
            ["document_unique_id"],
            unique=True,
            postgresql_where=COMMITTED,
            sqlite_where=COMMITTED,
        )


def downgrade() -> None:
    with op.batch_alter_table("repository_document") as batch:
        batch.drop_index("uq_repository_document_committed_unique_id")
        batch.drop_index("ix_repository_document_document_unique_id")
        batch.create_unique_constraint(
            "uq_repository_document_document_unique_id", ["document_unique_id"]
        )

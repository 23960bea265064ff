"""repository_document: the repository index.

Revision ID: repository_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "repository_0001"
down_revision = None
branch_labels = ("repository",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repository_document",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_unique_id", sa.String(128), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repository_document"),
        sa.UniqueConstraint("document_unique_id", name="uq_repository_document_document_unique_id"),
    )
    op.create_index("ix_repository_document_sha1", "repository_document", ["sha1"])
    op.create_index(
        "ix_repository_document_state_created", "repository_document", ["state", "created"]
    )


def downgrade() -> None:
    op.drop_index("ix_repository_document_state_created", table_name="repository_document")
    op.drop_index("ix_repository_document_sha1", table_name="repository_document")
    op.drop_table("repository_document")

"""imaging_instance.received indexed: the studies that arrived lately, found fast

Revision ID: imaging_source_0002
Revises: imaging_source_0001
Create Date: 2026-11-30 21:50:00.000000

"""

from collections.abc import Sequence

from alembic import op

revision = "imaging_source_0002"
down_revision: str | Sequence[str] | None = "imaging_source_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("imaging_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_received"), ["received"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("imaging_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imaging_instance_received"))

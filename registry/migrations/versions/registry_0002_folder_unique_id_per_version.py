"""folder uniqueId unique per version (ITI-57 Folder versions share their uniqueId)

Revision ID: registry_0002
Revises: registry_0001
Create Date: 2026-12-01 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = 'registry_0002'
down_revision: Union[str, Sequence[str], None] = 'registry_0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('folder', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_folder_unique_id'), type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_folder_unique_id_version'), ['unique_id', 'version']
        )


def downgrade() -> None:
    """Downgrade schema (fails while a Folder has several versions)."""
    with op.batch_alter_table('folder', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_folder_unique_id_version'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_folder_unique_id'), ['unique_id'])

"""the stored LeafClass XML compressed with lz4 on PostgreSQL (when the server has it)

Revision ID: registry_0003
Revises: registry_0002
Create Date: 2026-11-30 22:20:00.000000

PostgreSQL compresses a value of more than about 2 KB before storing it (TOAST,
PostgreSQL 15 73.2); a DocumentEntry's XML is about 6 KB.  pglz, the default, was the
largest single item of PostgreSQL's CPU in 100-document registrations; lz4 compresses
and decompresses several times faster (PostgreSQL 15 CREATE TABLE, COMPRESSION).  Only
values written from now on are lz4; older ones are read as they are.  A server built
without lz4 keeps pglz; SQLite has no such setting.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "registry_0003"
down_revision: str | Sequence[str] | None = "registry_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("submission_set", "folder", "document_entry", "association")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    row = bind.exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).first()
    return bool(row and row[0])  # no such setting before PostgreSQL 14


def _compress_with(method: str) -> None:
    if _lz4_available():
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN xml SET COMPRESSION {method}")


def upgrade() -> None:
    """Upgrade schema."""
    _compress_with("lz4")


def downgrade() -> None:
    """Downgrade schema."""
    _compress_with("pglz")

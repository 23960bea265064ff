"""The repository's own index: document uniqueId -> blob (SHA-1), size, mimeType.

The index row is what makes a document retrievable (ITI-43).  A row is written
``pending`` before its ITI-42 Register is sent and becomes ``committed`` once the
registry answered Success (ITI TF-2 3.41.4.1.3.2); a start-up recovery pass removes
pending rows a crash left behind.  Every ITI-41 transaction writes its own pending
row, so concurrent submissions of one uniqueId (the registry accepts at most one
content for it, ITI TF-2 3.42.4.1.3.3.1) never share or overwrite a row; only one
row per uniqueId can be ``committed`` (a partial unique index), so processes sharing
one database cannot both commit a uniqueId.

Kept apart from the registry's metadata (own MetaData, own Alembic version table), so
both may live in one database or in two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DocumentState(StrEnum):
    PENDING = "pending"  # stored, its Register not yet answered with Success
    COMMITTED = "committed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RepositoryDocument(Base):
    __tablename__ = "repository_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # ITI TF-3 4.2.3.2.26: uniqueId, at most 128 characters
    document_unique_id: Mapped[str] = mapped_column(String(128), index=True)
    sha1: Mapped[str] = mapped_column(String(40), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default=DocumentState.PENDING)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index(None, "state", "created"),
        # one committed row per uniqueId; pending rows of concurrent submissions coexist
        Index(
            "uq_repository_document_committed_unique_id",
            "document_unique_id",
            unique=True,
            postgresql_where=text(f"state = '{DocumentState.COMMITTED}'"),
            sqlite_where=text(f"state = '{DocumentState.COMMITTED}'"),
        ),
    )


__all__ = ["Base", "DocumentState", "NAMING_CONVENTION", "RepositoryDocument", "utcnow"]

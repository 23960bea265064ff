"""The Imaging Document Source's journal of published manifests: per study, the
manifest it last published (RAD-68), for which patient and over which instances.

It answers three questions without asking the registry: which manifest a re-publication
replaces (RAD68-006), whether a study changed since it was published, and which studies
are due for automatic publication (stable for a configured delay after their last
instance arrived).  A study whose instances are all gone keeps its row, marked with the
time its manifest was deprecated (ITI-57); it then has no current manifest.  Table
prefix ``kos_``; its own Alembic environment and version table (``alembic_version_kos``)
so it shares a database with the other actors.  Nothing is created at import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.config import Config
from sqlalchemy import DateTime, Engine, Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from storage import migrations as storage_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations_publish"
VERSION_TABLE = "alembic_version_kos"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class PublishBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PublishedManifestRow(PublishBase):
    __tablename__ = "kos_published_manifest"

    study_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(256))  # affinity-domain CX
    manifest_unique_id: Mapped[str] = mapped_column(String(64))
    entry_uuid: Mapped[str] = mapped_column(String(64))
    instance_digest: Mapped[str] = mapped_column(String(40))
    instance_count: Mapped[int] = mapped_column(Integer)
    published: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deprecated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


@dataclass(frozen=True, slots=True)
class PublishedManifest:
    study_instance_uid: str
    patient_id: str
    manifest_unique_id: str
    entry_uuid: str
    instance_digest: str
    instance_count: int
    published: datetime
    deprecated: datetime | None = None  # the manifest was deprecated (ITI-57) at


def instance_digest(sop_instance_uids: Iterable[str]) -> str:
    """SHA-1 over the sorted SOP Instance UIDs: equal iff the same instances."""
    digest = hashlib.sha1()
    for uid in sorted(set(sop_instance_uids)):
        digest.update(uid.encode("ascii") + b"\n")
    return digest.hexdigest()


def alembic_config(engine: Engine) -> Config:
    return storage_migrations.alembic_config(MIGRATIONS_DIR, VERSION_TABLE, engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the journal's table to ``revision``."""
    storage_migrations.upgrade(MIGRATIONS_DIR, VERSION_TABLE, engine, revision)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def _value(row: PublishedManifestRow) -> PublishedManifest:
    return PublishedManifest(
        row.study_instance_uid,
        row.patient_id,
        row.manifest_unique_id,
        row.entry_uuid,
        row.instance_digest,
        row.instance_count,
        _aware(row.published),
        None if row.deprecated is None else _aware(row.deprecated),
    )


class PublishedManifests:
    """The journal on ``engine``; also a ``ManifestLocator`` (``current_manifest``)."""

    def __init__(self, engine: Engine) -> None:
        self.sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)

    def get(self, study_uid: str) -> PublishedManifest | None:
        with self.sessions() as session:
            row = session.get(PublishedManifestRow, study_uid)
            return None if row is None else _value(row)

    def current_manifest(self, patient_id: str, study_uid: str) -> str | None:
        """The entryUUID last published for the study, if it was for this patient and
        has not been deprecated since."""
        record = self.get(study_uid)
        if record is None or record.patient_id != patient_id or record.deprecated is not None:
            return None
        return record.entry_uuid

    def record(self, manifest: PublishedManifest) -> None:
        """Remember ``manifest`` as the study's current one (insert or replace)."""
        with self.sessions.begin() as session:
            session.merge(
                PublishedManifestRow(
                    study_instance_uid=manifest.study_instance_uid,
                    patient_id=manifest.patient_id,
                    manifest_unique_id=manifest.manifest_unique_id,
                    entry_uuid=manifest.entry_uuid,
                    instance_digest=manifest.instance_digest,
                    instance_count=manifest.instance_count,
                    published=manifest.published,
                    deprecated=manifest.deprecated,
                )
            )

    def record_deprecation(self, study_uid: str, at: datetime) -> PublishedManifest | None:
        """The study's manifest was deprecated at ``at`` (its instances are all gone):
        it stops being current, and the study counts as handled as of ``at``."""
        with self.sessions.begin() as session:
            row = session.get(PublishedManifestRow, study_uid)
            if row is None:
                return None
            row.deprecated = at
            row.published = at
            return _value(row)

    def published_times(self, study_uids: Iterable[str]) -> dict[str, datetime]:
        wanted = list(study_uids)
        with self.sessions() as session:
            rows = session.execute(
                select(
                    PublishedManifestRow.study_instance_uid, PublishedManifestRow.published
                ).where(PublishedManifestRow.study_instance_uid.in_(wanted))
            )
            return {uid: _aware(published) for uid, published in rows}


def studies_due(
    last_received: Mapping[str, datetime],
    published: Mapping[str, datetime],
    *,
    now: datetime,
    delay: timedelta,
) -> list[str]:
    """The studies to publish automatically: nothing arrived for ``delay`` (the study
    is stable) and something arrived since it was last published."""
    due = []
    for study_uid, received in last_received.items():
        stable = _aware(received) + delay <= now
        changed = study_uid not in published or _aware(received) > published[study_uid]
        if stable and changed:
            due.append(study_uid)
    return sorted(due)


__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "PublishBase",
    "PublishedManifest",
    "PublishedManifestRow",
    "PublishedManifests",
    "alembic_config",
    "instance_digest",
    "studies_due",
    "upgrade",
]

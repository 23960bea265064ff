"""The registry's relational schema: XDS-shaped, one table per object kind.

Every ITI-18 stored-query parameter is an indexed column or an indexed child table,
so a FindDocuments is one indexed SQL statement.  The submitted metadata is kept as
canonical LeafClass bytes (``xml``) so a query answers without rebuilding slots; the
columns are what queries filter on, the xml is what they return.

Uniqueness lives here: ``entry_uuid`` of every object, (``logical_id``, ``version``)
of DocumentEntry and Folder, and the SubmissionSet ``unique_id`` are unique
constraints.  A DocumentEntry ``unique_id`` is only indexed: ITI TF-2 3.42.4.1.3.3.1
accepts an identical resubmission.  A Folder ``unique_id`` is unique per version
(``unique_id``, ``version``): its versions (ITI-57) share it.

Times are kept as the DTM strings submitted (``creation_time``) plus a sortable key
(``creation_time_key``, see :func:`dtm_key`) for range comparisons.

Merged patients: ``patient_id`` columns hold the *current* (surviving) id; the merge
is recorded in ``patient_merge`` (see ``registry.patients``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column widths: UUID urns, OIDs (64 chars max, ITI TF-3 4.2.3.2.26 allows 128 for
# uniqueId), CX patient ids and coded values.
UUID = String(64)
OID = String(128)
CX = String(256)
CODE = String(256)
STATUS = String(64)
DTM = String(32)
DTM_KEY = String(14)
TEXT = String(1024)

# Kinds of DocumentEntry multi-valued codes (ITI TF-3 4.2.3.2.5 and 4.2.3.2.8)
CODE_KIND_EVENT = "eventCodeList"
CODE_KIND_CONFIDENTIALITY = "confidentialityCode"
DOCUMENT_ENTRY_CODE_KINDS = (CODE_KIND_EVENT, CODE_KIND_CONFIDENTIALITY)


def dtm_key(value: str | None) -> str | None:
    """A DTM (ITI TF-3 Table 4.2.3.1.7-2, YYYY[MM[DD[hh[mm[ss]]]]], UTC) made sortable:
    right-padded with zeros to 14 digits, so string order is time order and a
    coarser value sorts at the start of the period it names."""
    if not value:
        return None
    digits = value.strip()[:14]
    return digits.ljust(14, "0")


def _now() -> datetime:
    return datetime.now(UTC)


class RegistryBase(DeclarativeBase):
    """Declarative base of every registry table (one MetaData, one naming convention)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {dict[str, Any]: JSON}


class DocumentEntryRow(RegistryBase):
    """An XDSDocumentEntry (ITI TF-3 4.2.3.2)."""

    __tablename__ = "document_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_uuid: Mapped[str] = mapped_column(UUID, unique=True)
    logical_id: Mapped[str] = mapped_column(UUID)
    version: Mapped[str] = mapped_column(String(16), default="1")
    unique_id: Mapped[str] = mapped_column(OID, index=True)
    patient_id: Mapped[str] = mapped_column(CX)
    status: Mapped[str] = mapped_column(STATUS)
    object_type: Mapped[str] = mapped_column(UUID)
    mime_type: Mapped[str | None] = mapped_column(String(128))
    hash: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[int | None] = mapped_column(BigInteger)
    repository_unique_id: Mapped[str | None] = mapped_column(OID)
    home: Mapped[str | None] = mapped_column(OID)
    creation_time: Mapped[str | None] = mapped_column(DTM)
    creation_time_key: Mapped[str | None] = mapped_column(DTM_KEY)
    service_start_time: Mapped[str | None] = mapped_column(DTM)
    service_start_time_key: Mapped[str | None] = mapped_column(DTM_KEY)
    service_stop_time: Mapped[str | None] = mapped_column(DTM)
    service_stop_time_key: Mapped[str | None] = mapped_column(DTM_KEY)
    class_code: Mapped[str | None] = mapped_column(CODE)
    class_code_scheme: Mapped[str | None] = mapped_column(CODE)
    type_code: Mapped[str | None] = mapped_column(CODE)
    type_code_scheme: Mapped[str | None] = mapped_column(CODE)
    format_code: Mapped[str | None] = mapped_column(CODE)
    format_code_scheme: Mapped[str | None] = mapped_column(CODE)
    practice_setting_code: Mapped[str | None] = mapped_column(CODE)
    practice_setting_code_scheme: Mapped[str | None] = mapped_column(CODE)
    healthcare_facility_type_code: Mapped[str | None] = mapped_column(CODE)
    healthcare_facility_type_code_scheme: Mapped[str | None] = mapped_column(CODE)
    submission_set_uuid: Mapped[str] = mapped_column(UUID, index=True)
    xml: Mapped[bytes] = mapped_column(LargeBinary)

    codes: Mapped[list[DocumentEntryCodeRow]] = relationship(
        back_populates="document_entry", cascade="all, delete-orphan"
    )
    authors: Mapped[list[DocumentEntryAuthorRow]] = relationship(
        back_populates="document_entry", cascade="all, delete-orphan"
    )
    reference_ids: Mapped[list[DocumentEntryReferenceIdRow]] = relationship(
        back_populates="document_entry", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("logical_id", "version"),
        Index(None, "patient_id", "status"),
        Index(None, "patient_id", "class_code"),
        Index(None, "patient_id", "type_code"),
        Index(None, "patient_id", "format_code"),
        Index(None, "patient_id", "practice_setting_code"),
        Index(None, "patient_id", "healthcare_facility_type_code"),
        Index(None, "patient_id", "creation_time_key"),
        Index(None, "patient_id", "service_start_time_key"),
        Index(None, "patient_id", "service_stop_time_key"),
    )


class DocumentEntryCodeRow(RegistryBase):
    """A multi-valued DocumentEntry code: eventCodeList or confidentialityCode."""

    __tablename__ = "document_entry_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_entry_id: Mapped[int] = mapped_column(
        ForeignKey("document_entry.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(CODE)
    scheme: Mapped[str] = mapped_column(CODE)

    document_entry: Mapped[DocumentEntryRow] = relationship(back_populates="codes")

    __table_args__ = (
        Index(None, "kind", "code", "scheme", "document_entry_id"),
        Index(None, "document_entry_id"),
    )


class DocumentEntryAuthorRow(RegistryBase):
    """DocumentEntry.author.authorPerson, one row per author (ITI TF-3 4.2.3.1.4)."""

    __tablename__ = "document_entry_author"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_entry_id: Mapped[int] = mapped_column(
        ForeignKey("document_entry.id", ondelete="CASCADE")
    )
    author_person: Mapped[str] = mapped_column(TEXT)

    document_entry: Mapped[DocumentEntryRow] = relationship(back_populates="authors")

    __table_args__ = (
        Index(None, "author_person", "document_entry_id"),
        Index(None, "document_entry_id"),
    )


class DocumentEntryReferenceIdRow(RegistryBase):
    """DocumentEntry.referenceIdList, one row per CXi value (ITI TF-3 4.2.3.2.28)."""

    __tablename__ = "document_entry_reference_id"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_entry_id: Mapped[int] = mapped_column(
        ForeignKey("document_entry.id", ondelete="CASCADE")
    )
    value: Mapped[str] = mapped_column(TEXT)

    document_entry: Mapped[DocumentEntryRow] = relationship(back_populates="reference_ids")

    __table_args__ = (
        Index(None, "value", "document_entry_id"),
        Index(None, "document_entry_id"),
    )


class SubmissionSetRow(RegistryBase):
    """An XDSSubmissionSet (ITI TF-3 4.2.3.3)."""

    __tablename__ = "submission_set"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_uuid: Mapped[str] = mapped_column(UUID, unique=True)
    unique_id: Mapped[str] = mapped_column(OID, unique=True)
    source_id: Mapped[str | None] = mapped_column(OID, index=True)
    patient_id: Mapped[str] = mapped_column(CX)
    status: Mapped[str] = mapped_column(STATUS)
    home: Mapped[str | None] = mapped_column(OID)
    submission_time: Mapped[str | None] = mapped_column(DTM)
    submission_time_key: Mapped[str | None] = mapped_column(DTM_KEY)
    content_type_code: Mapped[str | None] = mapped_column(CODE)
    content_type_code_scheme: Mapped[str | None] = mapped_column(CODE)
    xml: Mapped[bytes] = mapped_column(LargeBinary)

    authors: Mapped[list[SubmissionSetAuthorRow]] = relationship(
        back_populates="submission_set", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index(None, "patient_id", "status"),
        Index(None, "patient_id", "submission_time_key"),
        Index(None, "patient_id", "content_type_code"),
    )


class SubmissionSetAuthorRow(RegistryBase):
    """SubmissionSet.author.authorPerson, one row per author."""

    __tablename__ = "submission_set_author"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_set_id: Mapped[int] = mapped_column(
        ForeignKey("submission_set.id", ondelete="CASCADE")
    )
    author_person: Mapped[str] = mapped_column(TEXT)

    submission_set: Mapped[SubmissionSetRow] = relationship(back_populates="authors")

    __table_args__ = (
        Index(None, "author_person", "submission_set_id"),
        Index(None, "submission_set_id"),
    )


class FolderRow(RegistryBase):
    """An XDSFolder (ITI TF-3 4.2.3.4)."""

    __tablename__ = "folder"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_uuid: Mapped[str] = mapped_column(UUID, unique=True)
    logical_id: Mapped[str] = mapped_column(UUID)
    version: Mapped[str] = mapped_column(String(16), default="1")
    # ITI TF-2 3.57.4.1.3.3.3: every version of a Folder keeps its uniqueId, so the
    # uniqueId is unique per version (two initial versions still cannot share one)
    unique_id: Mapped[str] = mapped_column(OID)
    patient_id: Mapped[str] = mapped_column(CX)
    status: Mapped[str] = mapped_column(STATUS)
    home: Mapped[str | None] = mapped_column(OID)
    last_update_time: Mapped[str | None] = mapped_column(DTM)
    last_update_time_key: Mapped[str | None] = mapped_column(DTM_KEY)
    xml: Mapped[bytes] = mapped_column(LargeBinary)

    codes: Mapped[list[FolderCodeRow]] = relationship(
        back_populates="folder", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("logical_id", "version"),
        UniqueConstraint("unique_id", "version"),
        Index(None, "patient_id", "status"),
        Index(None, "patient_id", "last_update_time_key"),
    )


class FolderCodeRow(RegistryBase):
    """Folder.codeList, one row per code (ITI TF-3 4.2.3.4.1)."""

    __tablename__ = "folder_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folder.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(CODE)
    scheme: Mapped[str] = mapped_column(CODE)

    folder: Mapped[FolderRow] = relationship(back_populates="codes")

    __table_args__ = (
        Index(None, "code", "scheme", "folder_id"),
        Index(None, "folder_id"),
    )


class AssociationRow(RegistryBase):
    """An Association (ITI TF-3 4.2.2): HasMember or a document relationship."""

    __tablename__ = "association"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_uuid: Mapped[str] = mapped_column(UUID, unique=True)
    association_type: Mapped[str] = mapped_column(String(128))
    source_uuid: Mapped[str] = mapped_column(UUID)
    target_uuid: Mapped[str] = mapped_column(UUID)
    submission_set_status: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(STATUS)
    home: Mapped[str | None] = mapped_column(OID)
    xml: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index(None, "source_uuid", "association_type"),
        Index(None, "target_uuid", "association_type"),
    )


class PatientRow(RegistryBase):
    """A patient of the affinity domain, known from the Patient Identity Feed."""

    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(CX, unique=True)
    demographics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PatientMergeRow(RegistryBase):
    """ITI TF-2 3.8.4.2.3: a subsumed patient id and the id that survived it."""

    __tablename__ = "patient_merge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subsumed_id: Mapped[str] = mapped_column(CX, unique=True)
    surviving_id: Mapped[str] = mapped_column(CX, index=True)
    merged: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


__all__ = [
    "CODE_KIND_CONFIDENTIALITY",
    "CODE_KIND_EVENT",
    "DOCUMENT_ENTRY_CODE_KINDS",
    "AssociationRow",
    "DocumentEntryAuthorRow",
    "DocumentEntryCodeRow",
    "DocumentEntryReferenceIdRow",
    "DocumentEntryRow",
    "FolderCodeRow",
    "FolderRow",
    "NAMING_CONVENTION",
    "PatientMergeRow",
    "PatientRow",
    "RegistryBase",
    "SubmissionSetAuthorRow",
    "SubmissionSetRow",
    "dtm_key",
]

"""Bulk loading of synthetic registry content, for benchmarks at 10^4 to 10^6 entries.

``load(engine, plan)`` writes ``plan.entries`` DocumentEntries, registered as ITI-42
would store them, straight into the registry's tables: per submission one Approved
SubmissionSet (with its author), its DocumentEntries (with their eventCodeList,
confidentialityCode, author and referenceIdList rows) and one HasMember association
SubmissionSet -> DocumentEntry with submissionSetStatus "Original" (ITI TF-3 4.2.2.1.1)
each; every patient id is registered as the Patient Identity Feed would (ITI-8).  The
columns are those ``registry.register`` writes and the stored ``xml`` is its canonical
LeafClass (``registry.bulk_metadata`` templates, checked against the serialiser), so
stored queries and ``xdsi check`` treat a loaded entry as a registered one - whose
document the repository does not hold.

Speed: the XML comes from templates; the next batch of rows is generated while the
database writes this one.  On PostgreSQL the rows go in by binary ``COPY`` in one
transaction, the tables locked against other writers (readers go on), then
``ANALYZE``; on SQLite by ``executemany``.

Everything derives from ``plan.seed``: the same plan loads the same entries.  A
non-empty registry is refused unless ``append`` (then a seed already loaded fails on
the entryUUID unique constraint and nothing is written).
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.dialects import postgresql

from ebxml.model import Code
from ebxml.vocabulary import (
    DOC_ENTRY_STABLE,
    SUBMISSION_SET_STATUS_ORIGINAL,
    UUID_PREFIX,
    AssociationType,
    AvailabilityStatus,
)
from registry.bulk_metadata import (
    PROFILES,
    STUDY_INSTANCE_UID,
    SUBMISSION_AUTHOR,
    SUBMISSION_CONTENT_TYPE,
    Templates,
)
from registry.tables import (
    CODE_KIND_CONFIDENTIALITY,
    CODE_KIND_EVENT,
    AssociationRow,
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    PatientRow,
    RegistryBase,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
    dtm_key,
)

APPROVED = AvailabilityStatus.APPROVED
BATCH_ENTRIES = 10_000  # entries generated, then copied, at a time
# ITU-T X.667 / ISO/IEC 9834-8: an OID made of a UUID, 2.25.<the UUID as an integer>
UUID_OID_ARC = "2.25"


class RegistryNotEmpty(Exception):
    """The target registry holds DocumentEntries and ``append`` was not asked for."""


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What to load.  ``patients`` share the entries (default one per 10 entries); the
    first patient (:attr:`probe_patient`) gets ``probe_entries`` of them, the others the
    rest, round robin.  Submissions hold up to ``entries_per_submission`` entries of one
    patient and arrive in a seeded random order, so no patient's entries are stored
    together."""

    entries: int
    affinity_domain: str
    repository_unique_id: str
    source_id: str
    patients: int | None = None
    probe_entries: int = 100
    entries_per_submission: int = 10
    seed: int = 0

    @property
    def patient_count(self) -> int:
        return max(1, self.patients if self.patients is not None else self.entries // 10)

    def patient_id(self, n: int) -> str:
        """The CX of patient ``n`` in the affinity domain (ITI TF-3 4.2.3.2.16)."""
        return f"BULK{self.seed:04d}P{n:08d}^^^&{self.affinity_domain}&ISO"

    @property
    def probe_patient(self) -> str:
        return self.patient_id(0)

    def entries_of(self) -> list[int]:
        """Entries per patient."""
        count = self.patient_count
        probe = min(self.probe_entries, self.entries) if count > 1 else self.entries
        rest, others = self.entries - probe, count - 1
        return [probe] + [rest // others + (1 if n < rest % others else 0) for n in range(others)]


@dataclass
class LoadReport:
    entries: int = 0
    submission_sets: int = 0
    associations: int = 0
    patients: int = 0
    seconds: float = 0.0
    probe_patient: str = ""

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


# --- rows ------------------------------------------------------------------------------

Row = dict[str, Any]

# insert order: parents before children
TABLES: tuple[type[RegistryBase], ...] = (
    SubmissionSetRow,
    SubmissionSetAuthorRow,
    DocumentEntryRow,
    DocumentEntryCodeRow,
    DocumentEntryAuthorRow,
    DocumentEntryReferenceIdRow,
    AssociationRow,
)


@dataclass
class _Batch:
    rows: dict[str, list[Row]] = field(
        default_factory=lambda: {t.__tablename__: [] for t in TABLES}
    )
    entries: int = 0
    submission_sets: int = 0


class _Ids:
    """The next primary key of each table (rows are written with explicit ids)."""

    def __init__(self, start: dict[str, int]) -> None:
        self._next = {name: value + 1 for name, value in start.items()}

    def take(self, table: str) -> int:
        value = self._next[table]
        self._next[table] = value + 1
        return value


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _dtm(moment: datetime, digits: int = 14) -> str:
    return moment.strftime("%Y%m%d%H%M%S")[:digits]


class _Generator:
    """The rows of every submission of ``plan``, batch by batch."""

    EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
    SPAN_SECONDS = 10 * 365 * 24 * 3600

    def __init__(self, plan: LoadPlan, ids: _Ids) -> None:
        self.plan = plan
        self.ids = ids
        self.rng = random.Random(plan.seed)
        self.templates = Templates(plan.repository_unique_id, plan.source_id)

    def submissions(self) -> list[tuple[int, int]]:
        """(patient number, entries) per submission, in a seeded random order."""
        k = max(1, self.plan.entries_per_submission)
        out = []
        for patient, count in enumerate(self.plan.entries_of()):
            out += [(patient, min(k, count - start)) for start in range(0, count, k)]
        self.rng.shuffle(out)
        return out

    def batches(self) -> Iterator[_Batch]:
        batch = _Batch()
        for patient, count in self.submissions():
            self._submission(batch, self.plan.patient_id(patient), count)
            if batch.entries >= BATCH_ENTRIES:
                yield batch
                batch = _Batch()
        if batch.entries:
            yield batch

    def _submission(self, batch: _Batch, patient_id: str, count: int) -> None:
        rng, rows = self.rng, batch.rows
        moment = self.EPOCH + timedelta(seconds=rng.randrange(self.SPAN_SECONDS))
        ss_uuid = _uuid(rng)
        ss = {
            "entry_uuid": f"{UUID_PREFIX}{ss_uuid}",
            "unique_id": f"{UUID_OID_ARC}.{ss_uuid.int}",
            "patient_id": patient_id,
            "submission_time": _dtm(moment + timedelta(minutes=30)),
        }
        ss_id = self.ids.take("submission_set")
        rows["submission_set"].append(
            {
                "id": ss_id,
                "entry_uuid": ss["entry_uuid"],
                "unique_id": ss["unique_id"],
                "source_id": self.plan.source_id,
                "patient_id": patient_id,
                "status": APPROVED,
                "home": None,
                "submission_time": ss["submission_time"],
                "submission_time_key": dtm_key(ss["submission_time"]),
                "xml": self.templates.submission_set.render(ss),
                **_prefixed("content_type_code", SUBMISSION_CONTENT_TYPE),
            }
        )
        rows["submission_set_author"].append(
            {
                "id": self.ids.take("submission_set_author"),
                "submission_set_id": ss_id,
                "author_person": SUBMISSION_AUTHOR,
            }
        )
        batch.submission_sets += 1
        for _ in range(count):
            self._entry(batch, patient_id, ss["entry_uuid"], moment)
            batch.entries += 1

    def _entry(self, batch: _Batch, patient_id: str, ss_uuid: str, moment: datetime) -> None:
        rng, rows = self.rng, batch.rows
        number = rng.randrange(len(PROFILES))
        profile, template = PROFILES[number], self.templates.entries[number]
        entry_uuid, study = _uuid(rng), _uuid(rng)
        start = moment - timedelta(minutes=rng.randrange(24 * 60))
        values = {
            "entry_uuid": f"{UUID_PREFIX}{entry_uuid}",
            "unique_id": f"{UUID_OID_ARC}.{entry_uuid.int}",
            "patient_id": patient_id,
            "creation_time": _dtm(moment),
            "service_start_time": _dtm(start, 12),
            "service_stop_time": _dtm(start + timedelta(minutes=20), 12),
            "hash": f"{rng.getrandbits(160):040x}",
            "size": str(rng.randrange(1_000, 50_000_000)),
            "study_uid": f"{UUID_OID_ARC}.{study.int}",
        }
        entry_id = self.ids.take("document_entry")
        rows["document_entry"].append(
            {
                "id": entry_id,
                "entry_uuid": values["entry_uuid"],
                "logical_id": values["entry_uuid"],
                "version": "1",
                "unique_id": values["unique_id"],
                "patient_id": patient_id,
                "status": APPROVED,
                "object_type": DOC_ENTRY_STABLE,
                "mime_type": profile.mime_type,
                "hash": values["hash"],
                "size": int(values["size"]),
                "repository_unique_id": self.plan.repository_unique_id,
                "home": None,
                **{
                    name: values[name]
                    for name in ("creation_time", "service_start_time", "service_stop_time")
                },
                **{
                    f"{name}_key": dtm_key(values[name])
                    for name in ("creation_time", "service_start_time", "service_stop_time")
                },
                **_prefixed("class_code", profile.class_code),
                **_prefixed("type_code", profile.type_code),
                **_prefixed("format_code", profile.format_code),
                **_prefixed("practice_setting_code", profile.practice_setting_code),
                **_prefixed("healthcare_facility_type_code", profile.healthcare_facility_type_code),
                "submission_set_uuid": ss_uuid,
                "xml": template.render(values),
            }
        )
        codes = [
            *((CODE_KIND_EVENT, c) for c in profile.event_codes),
            *((CODE_KIND_CONFIDENTIALITY, c) for c in profile.confidentiality_codes),
        ]
        rows["document_entry_code"].extend(
            {
                "id": self.ids.take("document_entry_code"),
                "document_entry_id": entry_id,
                "kind": kind,
                "code": c.code,
                "scheme": c.scheme,
            }
            for kind, c in codes
        )
        rows["document_entry_author"].append(
            {
                "id": self.ids.take("document_entry_author"),
                "document_entry_id": entry_id,
                "author_person": profile.author,
            }
        )
        if profile.imaging:
            rows["document_entry_reference_id"].append(
                {
                    "id": self.ids.take("document_entry_reference_id"),
                    "document_entry_id": entry_id,
                    "value": f"{values['study_uid']}^^^^{STUDY_INSTANCE_UID}",
                }
            )
        association = {
            "entry_uuid": f"{UUID_PREFIX}{_uuid(rng)}",
            "source": ss_uuid,
            "target": values["entry_uuid"],
        }
        rows["association"].append(
            {
                "id": self.ids.take("association"),
                "entry_uuid": association["entry_uuid"],
                "association_type": AssociationType.HAS_MEMBER,
                "source_uuid": ss_uuid,
                "target_uuid": values["entry_uuid"],
                "submission_set_status": SUBMISSION_SET_STATUS_ORIGINAL,
                "status": APPROVED,
                "home": None,
                "xml": self.templates.association.render(association),
            }
        )


def _prefixed(name: str, code: Code) -> Row:
    return {name: code.code, f"{name}_scheme": code.scheme}


# --- writing ---------------------------------------------------------------------------

# binary COPY: the type of each registry column, by its PostgreSQL DDL type
_COPY_TYPES = {"INTEGER": "int4", "BIGINT": "int8", "VARCHAR": "text", "BYTEA": "bytea"}


def _copy_type(column: Any) -> str:
    ddl = column.type.compile(dialect=postgresql.dialect()).split("(")[0]
    return _COPY_TYPES[ddl]


def _table(model: type[RegistryBase]) -> Table:
    return model.__table__  # type: ignore[return-value]


def _check_empty(connection: Any, append: bool) -> None:
    count = connection.execute(select(func.count()).select_from(_table(DocumentEntryRow)))
    if count.scalar_one() and not append:
        raise RegistryNotEmpty("the registry holds DocumentEntries; load with append to add")


def _max_ids(connection: Any) -> dict[str, int]:
    return {
        _table(t).name: connection.execute(
            select(func.coalesce(func.max(_table(t).c.id), 0))
        ).scalar_one()
        for t in TABLES
    }


def _patient_rows(plan: LoadPlan) -> list[Row]:
    created = datetime.now(UTC)
    return [
        {"patient_id": plan.patient_id(n), "demographics": None, "created": created}
        for n, count in enumerate(plan.entries_of())
        if n == 0 or count
    ]


def load(
    engine: Engine,
    plan: LoadPlan,
    *,
    append: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load ``plan`` into the migrated registry database of ``engine`` in one
    transaction; ``progress`` gets the running count of entries after each batch."""
    started = time.perf_counter()
    report = LoadReport(probe_patient=plan.probe_patient)
    writer = _copy_batch if engine.dialect.name == "postgresql" else _insert_batch
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(_table(t).name for t in (*TABLES, PatientRow))
            # other writers wait; readers go on (PostgreSQL EXCLUSIVE lock mode)
            connection.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
        _check_empty(connection, append)
        report.patients = _insert_patients(connection, _patient_rows(plan))
        generator = _Generator(plan, _Ids(_max_ids(connection)))
        for batch in _prefetched(generator.batches()):
            writer(connection, batch)
            report.entries += batch.entries
            report.submission_sets += batch.submission_sets
            report.associations += batch.entries
            if progress:
                progress(report.entries)
        if engine.dialect.name == "postgresql":
            for t in TABLES:
                name = _table(t).name
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {name}))"
                )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for t in (*TABLES, PatientRow):
                connection.exec_driver_sql(f"ANALYZE {_table(t).name}")
    report.seconds = time.perf_counter() - started
    return report


def _prefetched(batches: Iterator[_Batch], depth: int = 2) -> Iterator[_Batch]:
    """``batches``, made ahead in a thread: the next batch is generated while the
    database writes this one."""
    ready: queue.Queue[_Batch | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                ready.put(batch)
            ready.put(None)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            ready.put(exc)

    producer = threading.Thread(target=produce, name="bulk-load-generator", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                producer.join(0.1)


def _insert_patients(connection: Any, rows: Sequence[Row]) -> int:
    """Patients not known yet, as ITI-8 registers them (``registry.patients``)."""
    table = _table(PatientRow)
    known = set(connection.execute(select(table.c.patient_id)).scalars())
    new = [r for r in rows if r["patient_id"] not in known]
    if new:
        connection.execute(table.insert(), new)
    return len(new)


def _insert_batch(connection: Any, batch: _Batch) -> None:
    for model in TABLES:
        table = _table(model)
        if rows := batch.rows[table.name]:
            connection.execute(table.insert(), rows)


def _copy_batch(connection: Any, batch: _Batch) -> None:
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for model in TABLES:
            table = _table(model)
            rows = batch.rows[table.name]
            if not rows:
                continue
            columns = [c for c in table.columns]
            names = [c.name for c in columns]
            statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
            with cursor.copy(statement) as copy:
                copy.set_types([_copy_type(c) for c in columns])
                for row in rows:
                    copy.write_row([row[n] for n in names])
    finally:
        cursor.close()


__all__ = ["LoadPlan", "LoadReport", "RegistryNotEmpty", "load"]

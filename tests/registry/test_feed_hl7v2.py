"""ITI-8 Patient Identity Feed at the Document Registry (registry/feed_hl7v2.py).

What is stored runs on every supported database (the ``engine`` fixture of
conftest.py); rules about the message alone run on SQLite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from registry import patients
from registry.db import make_engine, session_factory
from registry.feed_hl7v2 import FeedOutcome, FeedProcessor
from registry.hl7v2 import AckCode, ErrorCondition
from registry.mllp import MllpLimits, send_mllp_async, serve_mllp
from registry.tables import PatientRow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7v2"
TESTKIT = Path("/work/shared/reference/testkit/tests")
AA = "1.3.6.1.4.1.21367.2005.13.20.1000"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# message-level rules that do not depend on the store run on SQLite only
SQLITE_ONLY = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)


def xds(ident: str) -> str:
    return f"{ident}^^^&{AA}&ISO"


def fixture(name: str, charset: str = "utf-8", **values: str) -> bytes:
    """An annotated fixture as wire bytes: notes dropped, segments CR-terminated."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    segments = [line for line in lines if line and not line.startswith("#")]
    return "".join(s + "\r" for s in segments).format(aa=AA, **values).encode(charset)


def replace(data: bytes, old: str, new: str) -> bytes:
    assert old.encode() in data
    return data.replace(old.encode(), new.encode(), 1)


@pytest.fixture
def outcomes() -> list[FeedOutcome]:
    return []


@pytest.fixture
def feed(engine: Engine, outcomes: list[FeedOutcome]) -> FeedProcessor:
    return FeedProcessor(
        session_factory(engine, write=True),
        AA,
        application="XDSI",
        facility="REG",
        clock=lambda: NOW,
        control_ids=lambda: "ACK-1",
        on_outcome=outcomes.append,
    )


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session


def known(db: Session, ident: str) -> bool:
    db.rollback()
    return patients.is_known(db, xds(ident))


def msa(ack: bytes) -> list[str]:
    segment = next(s for s in ack.decode().split("\r") if s.startswith("MSA|"))
    return segment.split("|")


def err(ack: bytes) -> str:
    return next(s for s in ack.decode().split("\r") if s.startswith("ERR|"))


def register(feed: FeedProcessor, ident: str) -> None:
    assert msa(feed.handle(fixture("adt_a01.hl7", pid=ident)))[1] == "AA"


def merge(feed: FeedProcessor, surviving: str, subsumed: str) -> bytes:
    return feed.handle(fixture("adt_a40.hl7", pid=surviving, pid2=subsumed))


# --- Admit/Register (ITI TF-2 3.8.4.1) ------------------------------------------------------


def test_a01_ack_bytes(feed: FeedProcessor) -> None:
    assert feed.handle(fixture("adt_a01.hl7", pid="P1")) == (
        b"MSH|^~\\&|XDS_REGISTRY|AFFINITY|PAT_SOURCE|HOSPITAL|20260102030405+0000||"
        b"ACK^A01^ACK|ACK-1|P|2.3.1\r"
        b"MSA|AA|MSG-A01-0001\r"
    )


@pytest.mark.parametrize("name", ["adt_a01.hl7", "adt_a04.hl7", "adt_a05.hl7"])
def test_admit_register_events_make_the_patient_known(
    feed: FeedProcessor, db: Session, name: str
) -> None:
    assert msa(feed.handle(fixture(name, pid="P1")))[1] == "AA"
    assert known(db, "P1")


def test_register_stores_the_patient_id_in_xds_form_with_demographics(
    feed: FeedProcessor, db: Session
) -> None:
    register(feed, "P1")
    row = db.scalars(select(PatientRow)).one()
    assert row.patient_id == xds("P1")
    assert row.demographics == {
        "PID-5": "MOUSE^MICKEY^J",
        "PID-7": "19281118",
        "PID-8": "M",
        "PID-11": "1600 PENNSYLVANIA AVE^^WASHINGTON^DC^20500",
    }


def test_only_identifiers_of_the_affinity_domain_are_stored(
    feed: FeedProcessor, db: Session
) -> None:
    register(feed, "P1")
    assert db.scalars(select(PatientRow.patient_id)).all() == [xds("P1")]


def test_register_is_idempotent(feed: FeedProcessor, db: Session) -> None:
    register(feed, "P1")
    register(feed, "P1")
    assert db.scalars(select(PatientRow.patient_id)).all() == [xds("P1")]


def test_no_identifier_of_the_affinity_domain_is_accepted_and_nothing_stored(
    feed: FeedProcessor, db: Session
) -> None:
    data = fixture("adt_a01.hl7", pid="P1").replace(AA.encode(), b"2.16.840.1.999")
    ack = feed.handle(data)
    assert msa(ack) == [
        "MSA",
        "AA",
        "MSG-A01-0001",
        f"no PID-3 identifier of assigning authority {AA}; nothing stored",
    ]
    assert db.scalars(select(PatientRow)).all() == []


@SQLITE_ONLY
def test_identifier_of_the_domain_without_iso_type_is_ignored(
    feed: FeedProcessor, db: Session
) -> None:
    data = replace(fixture("adt_a01.hl7", pid="P1"), f"&{AA}&ISO~", f"&{AA}&DNS~")
    assert msa(feed.handle(data))[1] == "AA"
    assert db.scalars(select(PatientRow)).all() == []


@SQLITE_ONLY
def test_unusable_patient_id_is_an_application_error(feed: FeedProcessor, db: Session) -> None:
    ack = feed.handle(fixture("adt_a01.hl7", pid="P\\S\\1"))
    assert msa(ack)[1] == "AE"
    assert err(ack).startswith("ERR|PID^1^3^102&")
    assert db.scalars(select(PatientRow)).all() == []


@SQLITE_ONLY
def test_missing_pid_is_an_application_error(feed: FeedProcessor) -> None:
    data = b"".join(s + b"\r" for s in fixture("adt_a01.hl7", pid="P1").split(b"\r")[:2])
    ack = feed.handle(data)
    assert msa(ack)[1] == "AE"
    assert err(ack) == "ERR|PID^1^^100&PID segment missing&HL70357"


@SQLITE_ONLY
def test_custom_encoding_characters_register_the_patient(feed: FeedProcessor, db: Session) -> None:
    ack = feed.handle(fixture("adt_a01_custom_encoding.hl7", pid="P7"))
    assert ack.startswith(b"MSH*!@%$*XDS_REGISTRY*AFFINITY*PAT_SOURCE*HOSPITAL*")
    assert b"\rMSA*AA*MSG-CUSTOM-1\r" in ack
    row = db.scalars(select(PatientRow)).one()
    assert (row.patient_id, row.demographics["PID-5"]) == (xds("P7"), "O!BRIEN$%*@^PAT")


@SQLITE_ONLY
def test_utf8_message_is_decoded_and_answered_in_utf8(feed: FeedProcessor, db: Session) -> None:
    ack = feed.handle(fixture("adt_a01_utf8.hl7", pid="P8"))
    assert ack.split(b"\r")[0].endswith(b"|2.5||||||UNICODE UTF-8")
    assert msa(ack)[1] == "AA"
    assert db.scalars(select(PatientRow)).one().demographics["PID-5"] == "MÜLLER^ZOË"


@SQLITE_ONLY
def test_latin1_message_is_decoded(feed: FeedProcessor, db: Session) -> None:
    text = fixture("adt_a01_utf8.hl7", pid="P8").decode("utf-8").replace("UNICODE UTF-8", "8859/1")
    assert msa(feed.handle(text.encode("latin-1")))[1] == "AA"
    assert db.scalars(select(PatientRow)).one().demographics["PID-5"] == "MÜLLER^ZOË"


# --- Update (ITI TF-2 3.8.4.1.4) --------------------------------------------------------------


def test_a08_is_accepted_and_changes_nothing(feed: FeedProcessor, db: Session) -> None:
    register(feed, "P1")
    ack = feed.handle(fixture("adt_a08.hl7", pid="P1"))
    assert msa(ack) == ["MSA", "AA", "MSG-A08-0001"]
    assert db.scalars(select(PatientRow)).one().demographics["PID-5"] == "MOUSE^MICKEY^J"


def test_a08_for_an_unknown_patient_does_not_register_it(feed: FeedProcessor, db: Session) -> None:
    assert msa(feed.handle(fixture("adt_a08.hl7", pid="P1")))[1] == "AA"
    assert not known(db, "P1")


# --- Merge (ITI TF-2 3.8.4.2) -----------------------------------------------------------------


def test_a40_merges_the_subsumed_into_the_surviving_id(feed: FeedProcessor, db: Session) -> None:
    register(feed, "P1")
    register(feed, "P2")
    ack = merge(feed, "P1", "P2")
    assert ack == (
        b"MSH|^~\\&|XDS_REGISTRY|AFFINITY|PAT_SOURCE|HOSPITAL|20260102030405+0000||"
        b"ACK^A40^ACK|ACK-1|P|2.3.1\r"
        b"MSA|AA|MSG-A40-0001\r"
    )
    assert not known(db, "P2")
    assert patients.resolve_for_query(db, xds("P1")) == [xds("P1"), xds("P2")]


def test_merge_chain(feed: FeedProcessor, db: Session) -> None:
    for ident in ("A", "B", "C"):
        register(feed, ident)
    assert msa(merge(feed, "B", "A"))[1] == "AA"
    assert msa(merge(feed, "C", "B"))[1] == "AA"
    db.rollback()
    assert patients.resolve_for_query(db, xds("C")) == [xds("C"), xds("B"), xds("A")]
    assert not known(db, "A") and not known(db, "B")


def test_merge_into_an_unknown_surviving_id_is_an_application_error(
    feed: FeedProcessor, db: Session
) -> None:
    register(feed, "P2")
    ack = merge(feed, "P1", "P2")
    assert msa(ack) == ["MSA", "AE", "MSG-A40-0001"]
    assert err(ack) == (
        f"ERR|PID^1^3^204&surviving patient id P1\\S\\\\S\\\\S\\\\T\\{AA}\\T\\ISO is not known&HL70357"
    )
    assert known(db, "P2")


def test_merge_into_a_subsumed_id_is_an_application_error(feed: FeedProcessor) -> None:
    for ident in ("A", "B", "C"):
        register(feed, ident)
    merge(feed, "B", "A")
    assert msa(merge(feed, "A", "C"))[1] == "AE"


def test_merging_a_subsumed_id_again_is_an_application_error(feed: FeedProcessor) -> None:
    for ident in ("A", "B", "C"):
        register(feed, ident)
    merge(feed, "B", "A")
    ack = merge(feed, "C", "A")
    assert msa(ack)[1] == "AE"
    assert err(ack).startswith("ERR|MRG^1^1^205&")


@SQLITE_ONLY
def test_merging_an_id_into_itself_is_an_application_error(feed: FeedProcessor) -> None:
    register(feed, "A")
    assert msa(merge(feed, "A", "A"))[1] == "AE"


def test_rejected_merge_of_a_multi_patient_message_keeps_nothing(
    feed: FeedProcessor, db: Session
) -> None:
    register(feed, "A")
    register(feed, "B")
    data = fixture("adt_a40.hl7", pid="A", pid2="B")
    data += f"PID|||{xds('UNKNOWN')}\rMRG|{xds('A')}\r".encode()
    assert msa(feed.handle(data))[1] == "AE"
    assert known(db, "B")


@SQLITE_ONLY
def test_merge_without_mrg_is_an_application_error(feed: FeedProcessor) -> None:
    data = fixture("adt_a40.hl7", pid="A", pid2="B").rsplit(b"MRG|", 1)[0]
    assert msa(feed.handle(data))[1] == "AE"


def test_merge_outside_the_affinity_domain_is_accepted_and_ignored(
    feed: FeedProcessor, db: Session
) -> None:
    register(feed, "A")
    data = replace(fixture("adt_a40.hl7", pid="A", pid2="B"), f"MRG|B^^^&{AA}", "MRG|B^^^&9.9")
    assert msa(feed.handle(data))[1] == "AA"
    assert patients.resolve_for_query(db, xds("A")) == [xds("A")]


# --- rejects (HL7 v2.3.1 2.13.1: MSH-9, MSH-11, MSH-12) -----------------------------------


A01_MSH9 = "ADT^A01^ADT_A01"


@pytest.mark.parametrize(
    ("old", "new", "condition", "field"),
    [
        (A01_MSH9, "ORU^R01", ErrorCondition.UNSUPPORTED_MESSAGE_TYPE, 9),
        (A01_MSH9, "ACK^A01", ErrorCondition.UNSUPPORTED_MESSAGE_TYPE, 9),
        (A01_MSH9, "ADT^A03^ADT_A03", ErrorCondition.UNSUPPORTED_EVENT_CODE, 9),
        ("|P|2.3.1", "|X|2.3.1", ErrorCondition.UNSUPPORTED_PROCESSING_ID, 11),
        ("|P|2.3.1", "|P|3.0", ErrorCondition.UNSUPPORTED_VERSION_ID, 12),
        ("|MSG-A01-0001|", "||", ErrorCondition.REQUIRED_FIELD_MISSING, 10),
    ],
)
@SQLITE_ONLY
def test_header_problems_are_rejected(
    feed: FeedProcessor,
    db: Session,
    old: str,
    new: str,
    condition: ErrorCondition,
    field: int,
) -> None:
    ack = feed.handle(replace(fixture("adt_a01.hl7", pid="P1"), old, new))
    assert msa(ack)[1] == "AR"
    assert err(ack).startswith(f"ERR|MSH^1^{field}^{condition.value}&")
    assert db.scalars(select(PatientRow)).all() == []


@SQLITE_ONLY
def test_reject_ack_bytes(feed: FeedProcessor) -> None:
    ack = feed.handle(replace(fixture("adt_a01.hl7", pid="P1"), A01_MSH9, "ORU^R01"))
    assert ack == (
        b"MSH|^~\\&|XDS_REGISTRY|AFFINITY|PAT_SOURCE|HOSPITAL|20260102030405+0000||"
        b"ACK^R01^ACK|ACK-1|P|2.3.1\r"
        b"MSA|AR|MSG-A01-0001\r"
        b"ERR|MSH^1^9^200&message type 'ORU' is not supported&HL70357\r"
    )


@SQLITE_ONLY
def test_event_is_taken_from_evn1_when_msh9_has_none(feed: FeedProcessor, db: Session) -> None:
    assert msa(feed.handle(replace(fixture("adt_a01.hl7", pid="P1"), A01_MSH9, "ADT")))[1] == "AA"
    assert known(db, "P1")


@SQLITE_ONLY
def test_unknown_character_set_is_rejected(feed: FeedProcessor) -> None:
    ack = feed.handle(replace(fixture("adt_a01.hl7", pid="P1"), "|P|2.3.1", "|P|2.3.1||||||EBCDIC"))
    assert msa(ack)[1] == "AR"
    assert err(ack).startswith("ERR|MSH^1^18^103&")
    assert b"EBCDIC" not in ack.split(b"\r")[0]


@pytest.mark.parametrize("data", [b"", b"hello", b"PID|||1\r", b"MSH|^^^^|x\r", b"\xff\xfe\x00"])
@SQLITE_ONLY
def test_unreadable_message_gets_a_generic_reject(feed: FeedProcessor, data: bytes) -> None:
    ack = feed.handle(data)
    assert ack.startswith(b"MSH|^~\\&|XDSI|REG|||20260102030405+0000||ACK|ACK-1|P|2.3.1\r")
    assert msa(ack) == ["MSA", "AR"]


def test_database_failure_is_a_reject(tmp_path: Path) -> None:
    # a database without the registry's tables: the failure is unrelated to the message
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    feed = FeedProcessor(session_factory(engine, write=True), AA, control_ids=lambda: "ACK-1")
    ack = feed.handle(fixture("adt_a01.hl7", pid="P1"))
    assert msa(ack) == ["MSA", "AR", "MSG-A01-0001"]
    assert err(ack) == "ERR|^^^207&Application internal error&HL70357"
    engine.dispose()


@SQLITE_ONLY
def test_refuse_answers_from_the_head_of_a_message(feed: FeedProcessor) -> None:
    head = fixture("adt_a01.hl7", pid="P1")[:150]
    ack = feed.refuse(head, "message of 2000000 bytes exceeds 1048576")
    assert msa(ack) == ["MSA", "AR", "MSG-A01-0001"]
    assert err(ack) == ("ERR|^^^207&message of 2000000 bytes exceeds 1048576&HL70357")


# --- outcome for the audit trail --------------------------------------------------------------


@SQLITE_ONLY
def test_outcome_names_event_sender_and_patient(
    feed: FeedProcessor, outcomes: list[FeedOutcome]
) -> None:
    register(feed, "P1")
    assert outcomes == [
        FeedOutcome(
            ack_code=AckCode.ACCEPT,
            message_type="ADT",
            trigger_event="A01",
            control_id="MSG-A01-0001",
            sending_application="PAT_SOURCE",
            sending_facility="HOSPITAL",
            patient_ids=(xds("P1"),),
        )
    ]


@SQLITE_ONLY
def test_failing_outcome_hook_does_not_fail_the_feed(engine: Engine, db: Session) -> None:
    def hook(outcome: FeedOutcome) -> None:
        raise RuntimeError("audit down")

    feed = FeedProcessor(session_factory(engine, write=True), AA, on_outcome=hook)
    assert msa(feed.handle(fixture("adt_a01.hl7", pid="P1")))[1] == "AA"
    assert known(db, "P1")


# --- over MLLP --------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_feed_over_mllp(feed: FeedProcessor, db: Session) -> None:
    server = await serve_mllp(
        "127.0.0.1", 0, feed.handle, limits=MllpLimits(max_message_bytes=400), refuse=feed.refuse
    )
    port = server.sockets[0].getsockname()[1]
    async with server:
        ack = await send_mllp_async("127.0.0.1", port, fixture("adt_a01.hl7", pid="P1"), 5)
        big = fixture("adt_a01.hl7", pid="P2") + b"ZZZ|" + b"x" * 1000 + b"\r"
        refused = await send_mllp_async("127.0.0.1", port, big, 5)
    assert msa(ack)[1] == "AA"
    assert msa(refused)[1] == "AR"
    assert known(db, "P1") and not known(db, "P2")


# --- NIST XDS Toolkit compatibility (testkit 15817, 15818) ------------------------------------


def _testplan(test: str) -> Path:
    path = TESTKIT / test / "pif" / "testplan.xml"
    if not path.exists():
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail(f"NIST testkit reference missing: {path}")
        pytest.skip(f"NIST testkit reference missing: {path}")
    return path


@pytest.mark.parametrize("test", ["15817", "15818"])
@SQLITE_ONLY
def test_nist_testkit_patient_identity_feed_is_accepted(
    feed: FeedProcessor, db: Session, test: str
) -> None:
    plan = etree.parse(str(_testplan(test)))
    step = plan.find("TestStep")
    assert step is not None and step.find("PatientIdentityFeedTransaction") is not None
    expected = step.findtext("ExpectedStatus")
    ack = feed.handle(fixture("nist_toolkit_a01.hl7", pid=f"T{test}"))
    assert ack.split(b"\r")[0].endswith(b"||ACK^A01|ACK-1|P|2.3")
    assert (expected, msa(ack)) == ("Success", ["MSA", "AA", "HL7MSG00001"])
    assert known(db, f"T{test}")

"""FindDocuments (ITI TF-2 3.18.4.1.2.3.7.1) against registered metadata, on every backend."""

from __future__ import annotations

import pytest
from query_data import P1, P2, Store, ids, new_uuid

from ebxml.model import Association, Author, Code
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    AssociationType,
    AvailabilityStatus,
    ResponseStatus,
    StoredQuery,
)
from registry.patients import merge_patients

FIND = StoredQuery.FIND_DOCUMENTS
APPROVED = f"('{AvailabilityStatus.APPROVED}')"
DEPRECATED = f"('{AvailabilityStatus.DEPRECATED}')"


def find(query, patient_id: str = P1, status: str = APPROVED, **slots):
    return query(
        FIND, XDSDocumentEntryPatientId=f"'{patient_id}'", XDSDocumentEntryStatus=status, **slots
    )


def test_patient_and_status_select_in_registration_order(store: Store, query) -> None:
    a, b = store.doc(), store.doc()
    store.submit(P1, a, b)
    store.submit(P2, store.doc())
    response = find(query)
    assert response.status == ResponseStatus.SUCCESS
    assert ids(response) == [a.entry_uuid, b.entry_uuid]


def test_leaf_class_returns_stored_xml_and_status(store: Store, query) -> None:
    a = store.doc()
    store.submit(P1, a)
    (obj,) = find(query).objects
    assert a.entry_uuid.encode() in obj.xml
    assert obj.availability_status == AvailabilityStatus.APPROVED


def test_unknown_patient_is_an_empty_success(store: Store, query) -> None:
    store.submit(P1, store.doc())
    response = find(query, patient_id="nobody^^^&1.2.3&ISO")
    assert (response.status, response.objects, response.errors) == (ResponseStatus.SUCCESS, (), ())


def test_status_selects_deprecated_entries(store: Store, query) -> None:
    original = store.doc()
    store.submit(P1, original)
    replacement = store.doc()
    rplc = Association(
        new_uuid(),
        AssociationType.RPLC,
        replacement.entry_uuid,
        original.entry_uuid,
    )
    store.submit(P1, replacement, associations=[rplc])
    assert ids(find(query, status=DEPRECATED)) == [original.entry_uuid]
    assert ids(find(query)) == [replacement.entry_uuid]


SINGLE_CODES = [
    ("XDSDocumentEntryClassCode", "class_code"),
    ("XDSDocumentEntryTypeCode", "type_code"),
    ("XDSDocumentEntryPracticeSettingCode", "practice_setting_code"),
    ("XDSDocumentEntryHealthcareFacilityTypeCode", "healthcare_facility_type_code"),
    ("XDSDocumentEntryFormatCode", "format_code"),
]


@pytest.mark.parametrize(("parameter", "attribute"), SINGLE_CODES)
def test_code_values_are_ored(store: Store, query, parameter: str, attribute: str) -> None:
    a, b, c = (store.doc(**{attribute: Code(x, "s")}) for x in "ABC")
    store.submit(P1, a, b, c)
    response = find(query, **{parameter: "('A^^s', 'B^^s')"})
    assert ids(response) == [a.entry_uuid, b.entry_uuid]


@pytest.mark.parametrize(("parameter", "attribute"), SINGLE_CODES)
def test_code_matches_scheme_too(store: Store, query, parameter: str, attribute: str) -> None:
    a, b = store.doc(**{attribute: Code("A", "s1")}), store.doc(**{attribute: Code("A", "s2")})
    store.submit(P1, a, b)
    assert ids(find(query, **{parameter: "('A^^s2')"})) == [b.entry_uuid]


def test_class_code_values_of_several_slots_are_ored(store: Store, query) -> None:
    a, b, c = (store.doc(class_code=Code(x, "s")) for x in "ABC")
    store.submit(P1, a, b, c)
    response = find(query, XDSDocumentEntryClassCode=[["('A^^s')"], ["('C^^s')"]])
    assert ids(response) == [a.entry_uuid, c.entry_uuid]


@pytest.mark.parametrize(
    ("parameter", "attribute"),
    [
        ("XDSDocumentEntryEventCodeList", "event_codes"),
        ("XDSDocumentEntryConfidentialityCode", "confidentiality_codes"),
    ],
)
def test_repeated_slots_are_anded(store: Store, query, parameter: str, attribute: str) -> None:
    both = store.doc(**{attribute: (Code("e1", "s"), Code("e2", "s"))})
    first = store.doc(**{attribute: (Code("e1", "s"),)})
    none = store.doc()
    store.submit(P1, both, first, none)
    assert ids(find(query, **{parameter: [["('e1^^s')"], ["('e2^^s')"]]})) == [both.entry_uuid]
    assert ids(find(query, **{parameter: [["('e1^^s', 'e2^^s')"]]})) == [
        both.entry_uuid,
        first.entry_uuid,
    ]


@pytest.fixture
def dated(store: Store) -> dict[str, str]:
    """creationTime 20041224, 20051224, 20061224 and one entry without it (NIST 12346)."""
    entries = {t: store.doc(creation_time=t) for t in ("20041224", "20051224", "20061224")}
    undated = store.doc()
    store.submit(P1, *entries.values(), undated)
    return {t: e.entry_uuid for t, e in entries.items()} | {"none": undated.entry_uuid}


@pytest.mark.parametrize(
    ("time_from", "time_to", "expected"),
    [
        ("20040101", "20050101", ["20041224"]),  # NIST 11897/creationtime_between
        ("200401010934", "200501010856", ["20041224"]),  # .../creationtime_between_long
        ("20041224", "20050101", ["20041224"]),  # From is inclusive (left_edge)
        ("20041124", "20041224", []),  # To is exclusive (right_edge)
        ("2005", None, ["20051224", "20061224"]),
        (None, "2005", ["20041224"]),
        ("20041224101010", "2005", []),  # a day-precise value starts at midnight
    ],
)
def test_creation_time_range(query, dated, time_from, time_to, expected) -> None:
    slots = {}
    if time_from:
        slots["XDSDocumentEntryCreationTimeFrom"] = time_from
    if time_to:
        slots["XDSDocumentEntryCreationTimeTo"] = time_to
    # the entry without a creationTime is not filtered out by the range
    assert set(ids(find(query, **slots))) == {dated[t] for t in expected} | {dated["none"]}


def test_entries_without_the_time_are_found_without_a_range(query, dated) -> None:
    assert dated["none"] in ids(find(query))


@pytest.mark.parametrize(
    ("parameter", "attribute"),
    [("ServiceStartTime", "service_start_time"), ("ServiceStopTime", "service_stop_time")],
)
def test_service_time_ranges(store: Store, query, parameter: str, attribute: str) -> None:
    early = store.doc(**{attribute: "200412230800"})
    late = store.doc(**{attribute: "200512240800"})
    untimed = store.doc()
    store.submit(P1, early, late, untimed)
    response = find(
        query,
        **{f"XDSDocumentEntry{parameter}From": "2005", f"XDSDocumentEntry{parameter}To": "2006"},
    )
    assert set(ids(response)) == {late.entry_uuid, untimed.entry_uuid}


@pytest.fixture
def authored(store: Store) -> dict[str, str]:
    names = {
        "ford": "^Ford^Harrison^^^",
        "smith": "^Smith^John^^^",
        "smyth": "^Smyth^Jane^^^",
    }
    entries = {k: store.doc(authors=(Author(person=v),)) for k, v in names.items()}
    store.submit(P1, *entries.values(), store.doc())
    return {k: e.entry_uuid for k, e in entries.items()}


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ("('%Ford%')", ["ford"]),  # NIST 11897/author
        ("('%Sm_th%')", ["smith", "smyth"]),  # _ is one character
        ("('%Smi%', '%Ford%')", ["ford", "smith"]),  # values are ORed
        ("('^Smith^John^^^')", ["smith"]),  # no wildcard: the whole value
        ("('%ford%')", ["ford"]),  # case does not matter
        ("('%Jones%')", []),
    ],
)
def test_author_person_like(query, authored, patterns: str, expected: list[str]) -> None:
    response = find(query, XDSDocumentEntryAuthorPerson=patterns)
    assert ids(response) == [authored[k] for k in expected]


def test_entry_type_defaults_to_stable(store: Store, query) -> None:
    stable, on_demand = store.doc(), store.doc(object_type=DOC_ENTRY_ON_DEMAND)
    store.submit(P1, stable, on_demand)
    assert ids(find(query)) == [stable.entry_uuid]
    assert ids(find(query, XDSDocumentEntryType=f"('{DOC_ENTRY_ON_DEMAND}')")) == [
        on_demand.entry_uuid
    ]


def test_parameters_are_anded(store: Store, query) -> None:
    match = store.doc(class_code=Code("A", "s"), creation_time="20041224")
    store.submit(
        P1,
        match,
        store.doc(class_code=Code("A", "s"), creation_time="20031224"),
        store.doc(class_code=Code("B", "s"), creation_time="20041224"),
    )
    response = find(
        query,
        XDSDocumentEntryClassCode="('A^^s')",
        XDSDocumentEntryCreationTimeFrom="2004",
    )
    assert ids(response) == [match.entry_uuid]


def test_merged_patient_id_finds_both_and_subsumed_finds_none(store: Store, query) -> None:
    a, b = store.doc(), store.doc()
    store.submit(P1, a)
    store.submit(P2, b)
    merge_patients(store.session, surviving_id=P1, subsumed_id=P2)
    assert ids(find(query, patient_id=P1)) == [a.entry_uuid, b.entry_uuid]
    response = find(query, patient_id=P2)
    assert (response.status, ids(response)) == (ResponseStatus.SUCCESS, [])

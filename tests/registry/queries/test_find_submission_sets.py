"""FindSubmissionSets (ITI TF-2 3.18.4.1.2.3.7.2)."""

from __future__ import annotations

import pytest
from query_data import P1, P2, Store, ids

from ebxml.errors import ErrorCode
from ebxml.model import Author, Code
from ebxml.vocabulary import AvailabilityStatus, StoredQuery

FIND = StoredQuery.FIND_SUBMISSION_SETS
APPROVED = f"('{AvailabilityStatus.APPROVED}')"


def find(query, **slots):
    return query(
        FIND, XDSSubmissionSetPatientId=f"'{P1}'", XDSSubmissionSetStatus=APPROVED, **slots
    )


@pytest.fixture
def sets(store: Store) -> dict[str, str]:
    """Two SubmissionSets of P1 that differ in every attribute, one of P2."""
    made = {}
    for name, fields in {
        "old": {
            "source_id": "1.1",
            "submission_time": "20041224100000",
            "content_type_code": Code("A", "s"),
            "authors": (Author(person="^Ford^Harrison"),),
        },
        "new": {
            "source_id": "2.2",
            "submission_time": "20241224100000",
            "content_type_code": Code("B", "s"),
            "authors": (Author(person="^Smith^John"),),
        },
    }.items():
        submitted = store.submit(P1, store.doc(), set_fields=fields)
        made[name] = submitted.submission_set.entry_uuid
    store.submit(P2, store.doc())
    return made


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        ({}, ["old", "new"]),
        ({"XDSSubmissionSetSourceId": "('2.2', '3.3')"}, ["new"]),
        ({"XDSSubmissionSetSubmissionTimeFrom": "2010"}, ["new"]),
        ({"XDSSubmissionSetSubmissionTimeTo": "20241224100000"}, ["old"]),
        ({"XDSSubmissionSetAuthorPerson": "'%Ford%'"}, ["old"]),
        ({"XDSSubmissionSetContentType": "('B^^s')"}, ["new"]),
    ],
)
def test_find_submission_sets(query, sets, slots, expected) -> None:
    assert ids(find(query, **slots)) == [sets[k] for k in expected]


def test_author_person_is_single_valued(query) -> None:
    response = find(query, XDSSubmissionSetAuthorPerson="('%a%', '%b%')")
    assert [e.code for e in response.errors] == [ErrorCode.XDSStoredQueryParamNumber]

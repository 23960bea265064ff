"""registry/stored_query.py: dispatch, return types, limits, homeCommunityId, errors."""

from __future__ import annotations

import pytest
from query_data import P1, Store, ids

from ebxml.errors import ErrorCode
from ebxml.messages import AdhocQueryRequest, StoredObject
from ebxml.model import Code
from ebxml.query import QUERY_DEFINITIONS
from ebxml.tags import RIM
from ebxml.vocabulary import AvailabilityStatus, ResponseStatus, ReturnType, StoredQuery
from ebxml.wire import adhoc_query_response
from registry.queries import QUERIES
from registry.stored_query import StoredQueryConfig, execute_stored_query

FIND = StoredQuery.FIND_DOCUMENTS
HOME = "urn:oid:1.2.3.99"
FIND_P1 = {
    "XDSDocumentEntryPatientId": f"'{P1}'",
    "XDSDocumentEntryStatus": f"('{AvailabilityStatus.APPROVED}')",
}


@pytest.fixture
def three(store: Store) -> list[str]:
    entries = [store.doc(), store.doc(), store.doc()]
    store.submit(P1, *entries)
    return [e.entry_uuid for e in entries]


def test_object_ref_returns_references_only(query, three: list[str]) -> None:
    response = query(FIND, return_type=ReturnType.OBJECT_REF, **FIND_P1)
    assert response.status == ResponseStatus.SUCCESS
    assert response.objects == ()
    assert [r.id for r in response.object_refs] == three


def test_leaf_class_returns_stored_objects(query, three: list[str]) -> None:
    response = query(FIND, **FIND_P1)
    assert all(isinstance(o, StoredObject) for o in response.objects)
    assert response.object_refs == ()


def test_too_many_results_answers_no_objects(query, three: list[str]) -> None:
    response = query(FIND, config=StoredQueryConfig(max_results=2), **FIND_P1)
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSTooManyResults]
    assert (response.objects, response.object_refs) == ((), ())


def test_limit_reached_exactly_is_fine(query, three: list[str]) -> None:
    response = query(FIND, config=StoredQueryConfig(max_results=3), **FIND_P1)
    assert ids(response) == three


def test_object_ref_has_its_own_limit(query, three: list[str]) -> None:
    config = StoredQueryConfig(max_results=1, max_object_refs=3)
    assert ids(query(FIND, return_type=ReturnType.OBJECT_REF, config=config, **FIND_P1)) == three
    response = query(
        FIND,
        return_type=ReturnType.OBJECT_REF,
        config=StoredQueryConfig(max_object_refs=2),
        **FIND_P1,
    )
    assert [e.code for e in response.errors] == [ErrorCode.XDSTooManyResults]


def test_configured_home_is_set_on_objects_and_refs(query, three: list[str]) -> None:
    config = StoredQueryConfig(home_community_id=HOME)
    leaf = query(FIND, config=config, home=HOME, **FIND_P1)
    refs = query(FIND, config=config, return_type=ReturnType.OBJECT_REF, **FIND_P1)
    assert {o.home for o in leaf.objects} == {HOME}
    assert {r.home for r in refs.object_refs} == {HOME}


def test_no_home_configured_none_set(query, three: list[str]) -> None:
    assert {o.home for o in query(FIND, **FIND_P1).objects} == {None}


def test_home_attribute_is_accepted_and_ignored(query, three: list[str]) -> None:
    # ITI TF-2 3.18.4.1.3 (NIST 11901/homeCommunityId): a registry accepts homeCommunityId
    config = StoredQueryConfig(home_community_id=HOME)
    response = query(FIND, config=config, home="urn:oid:9.9", **FIND_P1)
    assert response.status == ResponseStatus.SUCCESS
    assert len(response.objects) == len(three)


def test_home_community_id_parameter_is_accepted(query, three: list[str]) -> None:
    config = StoredQueryConfig(home_community_id=HOME)
    response = query(
        StoredQuery.GET_DOCUMENTS,
        config=config,
        XDSDocumentEntryEntryUUID=f"('{three[0]}')",
        homeCommunityId="'urn:oid:9.9'",
    )
    assert response.status == ResponseStatus.SUCCESS
    assert [o.entry_uuid for o in response.objects] == [three[0]]


def test_unknown_query_id(query) -> None:
    response = query("urn:uuid:00000000-0000-0000-0000-000000000000")
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownStoredQuery]


def test_multi_patient_query_is_unknown_to_iti18(query) -> None:
    # ITI TF-2 3.51.4.1.2: FindDocumentsForMultiplePatients is an ITI-51 query
    response = query(
        StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
        XDSDocumentEntryPatientId=f"('{P1}')",
        XDSDocumentEntryStatus=f"('{AvailabilityStatus.APPROVED}')",
    )
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownStoredQuery]


@pytest.mark.parametrize("query_id", sorted(QUERY_DEFINITIONS))
def test_every_defined_query_is_implemented_with_its_params(query_id: str) -> None:
    assert QUERIES[query_id].params_type is QUERY_DEFINITIONS[query_id].params_type


def test_parameter_errors_are_answered(query) -> None:
    response = query(FIND, XDSDocumentEntryPatientId=f"'{P1}'")
    assert response.status == ResponseStatus.FAILURE
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSStoredQueryMissingParam, "$XDSDocumentEntryStatus")
    ]


@pytest.mark.parametrize("composed", [True, False])
def test_leaf_class_objects_are_always_composed(store: Store, session, composed: bool) -> None:
    # ebRS 3.0 returnComposedObjects: xdsi keeps each object whole, so its
    # Classifications, ExternalIdentifiers and Slots are inside it either way
    entry = store.doc(class_code=Code("c", "1.2.3"), creation_time="20240101")
    store.submit(P1, entry)
    parameters = {f"${k}": [[v]] for k, v in FIND_P1.items()}
    request = AdhocQueryRequest(FIND, parameters, return_composed_objects=composed)
    response = execute_stored_query(session, request, StoredQueryConfig())
    body = adhoc_query_response(response, ReturnType.LEAF_CLASS)
    (extrinsic,) = body.iter(RIM.ExtrinsicObject)
    assert extrinsic.get("id") == entry.entry_uuid
    children = {child.tag for child in extrinsic}
    assert {RIM.Classification, RIM.ExternalIdentifier, RIM.Slot} <= children

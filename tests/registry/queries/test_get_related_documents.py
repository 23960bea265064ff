"""GetRelatedDocuments (ITI TF-2 3.18.4.1.2.3.7.13) against registered metadata, on
every backend: the DocumentEntries related to one entry by an Association of a type in
$AssociationTypes, followed in both directions, with those Associations."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from query_data import P1, Store, ids, new_uuid

from ebxml.model import Association, DocumentEntry
from ebxml.vocabulary import AssociationType, ResponseStatus, StoredQuery

RPLC, APND = AssociationType.RPLC, AssociationType.APND


@dataclass
class Chain:
    """b replaces a; c appends to b."""

    a: DocumentEntry
    b: DocumentEntry
    c: DocumentEntry
    rplc: Association
    apnd: Association


@pytest.fixture
def chain(store: Store) -> Chain:
    a, b, c = store.doc(), store.doc(), store.doc()
    store.submit(P1, a)
    rplc = Association(new_uuid(), RPLC, b.entry_uuid, a.entry_uuid)
    store.submit(P1, b, associations=[rplc])
    apnd = Association(new_uuid(), APND, c.entry_uuid, b.entry_uuid)
    store.submit(P1, c, associations=[apnd])
    return Chain(a, b, c, rplc, apnd)


def related(query, *types: str, entry: DocumentEntry | None = None, unique_id: str = ""):
    named = (
        {"XDSDocumentEntryEntryUUID": f"'{entry.entry_uuid}'"}
        if entry is not None
        else {"XDSDocumentEntryUniqueId": f"'{unique_id}'"}
    )
    types_list = ", ".join(f"'{t}'" for t in types)
    return query(StoredQuery.GET_RELATED_DOCUMENTS, AssociationTypes=f"({types_list})", **named)


def test_replacement_found_from_the_original(query, chain: Chain) -> None:
    response = related(query, RPLC, entry=chain.a)
    assert response.status == ResponseStatus.SUCCESS
    assert ids(response) == [chain.a.entry_uuid, chain.b.entry_uuid, chain.rplc.entry_uuid]


def test_original_found_from_the_replacement(query, chain: Chain) -> None:
    # the Association points from b to a; the query follows it backwards too
    assert ids(related(query, RPLC, entry=chain.b)) == [
        chain.a.entry_uuid,
        chain.b.entry_uuid,
        chain.rplc.entry_uuid,
    ]


def test_every_requested_type_one_step(query, chain: Chain) -> None:
    assert ids(related(query, RPLC, APND, entry=chain.b)) == [
        chain.a.entry_uuid,
        chain.b.entry_uuid,
        chain.c.entry_uuid,
        chain.rplc.entry_uuid,
        chain.apnd.entry_uuid,
    ]


def test_only_the_requested_types(query, chain: Chain) -> None:
    assert ids(related(query, APND, entry=chain.b)) == [
        chain.b.entry_uuid,
        chain.c.entry_uuid,
        chain.apnd.entry_uuid,
    ]


def test_relationships_are_not_followed_transitively(query, chain: Chain) -> None:
    # c relates to b only; a is two steps away
    assert chain.a.entry_uuid not in ids(related(query, RPLC, APND, entry=chain.c))


def test_by_unique_id(query, chain: Chain) -> None:
    assert ids(related(query, APND, unique_id=chain.c.unique_id)) == [
        chain.b.entry_uuid,
        chain.c.entry_uuid,
        chain.apnd.entry_uuid,
    ]


def test_no_relationship_returns_nothing_not_even_the_entry(query, chain: Chain) -> None:
    response = related(query, AssociationType.XFRM, entry=chain.b)
    assert (response.status, response.objects) == (ResponseStatus.SUCCESS, ())


def test_has_member_relates_no_document(query, chain: Chain) -> None:
    # the SubmissionSet -> entry HasMember has no DocumentEntry at its other end
    assert ids(related(query, AssociationType.HAS_MEMBER, entry=chain.a)) == []


def test_unknown_entry_is_an_empty_success(query, chain: Chain) -> None:
    response = related(query, RPLC, entry=DocumentEntry(entry_uuid=new_uuid(), unique_id="1.2"))
    assert (response.status, response.objects) == (ResponseStatus.SUCCESS, ())

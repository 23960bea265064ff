"""ebxml/wire.py: a LeafClass AdhocQueryResponse with the stored metadata left as bytes
(``adhoc_query_response_parts``) is, once the bytes are written in, the response
``adhoc_query_response`` builds by parsing them: current status and home written over,
schema-valid; bytes not in the canonical form fall back to parsing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from ebxml.messages import AdhocQueryResponse, StoredObject
from ebxml.model import Association, Author, Code, DocumentEntry, SubmissionSet
from ebxml.serialize import leaf_class
from ebxml.vocabulary import AssociationType, AvailabilityStatus, ResponseStatus, ReturnType
from ebxml.wire import adhoc_query_response, adhoc_query_response_parts, stored_leaf_pieces
from soap.splice import XmlSplice, spliced_bytes

PATIENT = "P1^^^&1.2.3&ISO"
ENTRY = DocumentEntry(
    entry_uuid="urn:uuid:6a3b1ad9-1e0c-4c47-9d2b-1c5f2f0e3a01",
    unique_id="1.2.3.4",
    patient_id=PATIENT,
    mime_type="text/plain",
    title='Notes "<draft>" & more \u00e9',
    class_code=Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
    confidentiality_codes=(Code("N", "2.16.840.1.113883.5.25", "Normal"),),
    authors=(Author(person="^Welby^Marcus"),),
    creation_time="20240105120000",
    hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
    size=3,
    repository_unique_id="1.2.3.9",
)
SET = SubmissionSet(
    entry_uuid="urn:uuid:6a3b1ad9-1e0c-4c47-9d2b-1c5f2f0e3a02",
    unique_id="1.2.3.5",
    source_id="1.2.3.6",
    patient_id=PATIENT,
    submission_time="20240105121500",
    content_type_code=Code("Imaging", "1.3.6.1.4.1.21367.100.1", "Imaging"),
)
MEMBER = Association(
    "urn:uuid:6a3b1ad9-1e0c-4c47-9d2b-1c5f2f0e3a03", AssociationType.HAS_MEMBER,
    SET.entry_uuid, ENTRY.entry_uuid, "Original",
)  # fmt: skip


def stored(obj: object, status: str, home: str | None = None) -> StoredObject:
    xml = etree.tostring(leaf_class(obj))  # as registry.register stores it
    return StoredObject(obj.entry_uuid, xml, status, home)  # type: ignore[attr-defined]


def written(response: AdhocQueryResponse) -> etree._Element:
    body, object_list, fragments = adhoc_query_response_parts(response, ReturnType.LEAF_CLASS)
    assert fragments and object_list is not None
    data = spliced_bytes(body, [XmlSplice(object_list, fragments)], etree.tostring)
    return etree.fromstring(data)


def c14n(elem: etree._Element) -> bytes:
    return etree.tostring(elem, method="c14n")


def test_written_response_is_the_parsed_one(
    assert_valid: Callable[[etree._Element], None],
) -> None:
    response = AdhocQueryResponse(
        ResponseStatus.SUCCESS,
        objects=(
            stored(SET, AvailabilityStatus.APPROVED, "urn:oid:1.2.3.7"),
            stored(ENTRY, AvailabilityStatus.DEPRECATED, "urn:oid:1.2.3.7"),
            stored(MEMBER, AvailabilityStatus.APPROVED),
        ),
    )
    elem = written(response)
    assert c14n(elem) == c14n(adhoc_query_response(response, ReturnType.LEAF_CLASS))
    assert_valid(elem)
    entry = elem.find(".//{*}ExtrinsicObject")
    assert entry is not None
    assert entry.get("status") == AvailabilityStatus.DEPRECATED
    assert entry.get("home") == "urn:oid:1.2.3.7"


def leaf_bytes(obj: StoredObject) -> bytes | None:
    pieces = stored_leaf_pieces(obj)
    return None if pieces is None else b"".join(pieces)


def test_stored_bytes_lose_only_their_rim_declaration() -> None:
    data = leaf_bytes(stored(MEMBER, AvailabilityStatus.APPROVED))
    assert data is not None
    assert data.startswith(b'<rim:Association id="urn:uuid:6a3b1ad9-')
    assert b"xmlns" not in data


def test_bytes_not_in_the_canonical_form_are_parsed() -> None:
    odd = StoredObject(
        ENTRY.entry_uuid,
        b'<?xml version="1.0"?>\n' + etree.tostring(leaf_class(ENTRY)),
        AvailabilityStatus.APPROVED,
    )
    assert stored_leaf_pieces(odd) is None
    response = AdhocQueryResponse(
        ResponseStatus.SUCCESS, objects=(stored(SET, AvailabilityStatus.APPROVED), odd)
    )
    body, _, fragments = adhoc_query_response_parts(response, ReturnType.LEAF_CLASS)
    assert fragments == ()
    assert c14n(body) == c14n(adhoc_query_response(response, ReturnType.LEAF_CLASS))


@pytest.mark.parametrize("home", [None, "urn:oid:1.2.3.7"])
@pytest.mark.parametrize("status", [AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED])
@pytest.mark.parametrize("obj", [SET, ENTRY, MEMBER], ids=["set", "entry", "association"])
def test_each_status_and_home_is_written_as_parsing_writes_it(
    obj: object, status: str, home: str | None
) -> None:
    response = AdhocQueryResponse(ResponseStatus.SUCCESS, objects=(stored(obj, status, home),))
    elem = written(response)
    assert c14n(elem) == c14n(adhoc_query_response(response, ReturnType.LEAF_CLASS))
    leaf = elem.find(".//{*}RegistryObjectList")[0]  # type: ignore[index]
    assert (leaf.get("status"), leaf.get("home")) == (status, home)


@pytest.mark.parametrize("home", [None, "urn:oid:1.2.3.7"])
def test_stored_bytes_already_right_are_not_copied(home: str | None) -> None:
    """The stored status is the current one: the pieces are views of the stored bytes
    around the rim declaration, and the home attribute where one is added."""
    obj = stored(ENTRY, AvailabilityStatus.APPROVED, home)
    pieces = stored_leaf_pieces(obj)
    assert pieces is not None
    added = [p for p in pieces if not (isinstance(p, memoryview) and p.obj is obj.xml)]
    assert added == ([b' home="urn:oid:1.2.3.7"'] if home else [])
    declaration = b' xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"'
    assert sum(len(p) for p in pieces) == len(obj.xml) - len(declaration) + len(b"".join(added))


def test_a_stored_home_is_kept_or_written_over() -> None:
    """Stored bytes that carry a home: the same one is kept as it is, another one is
    written over."""
    xml = etree.tostring(leaf_class(ENTRY)).replace(
        b' status="', b' home="urn:oid:1.2.3.7" status="', 1
    )
    for home in ("urn:oid:1.2.3.7", "urn:oid:9.9"):
        obj = StoredObject(ENTRY.entry_uuid, xml, AvailabilityStatus.APPROVED, home)
        response = AdhocQueryResponse(ResponseStatus.SUCCESS, objects=(obj,))
        elem = written(response)
        assert c14n(elem) == c14n(adhoc_query_response(response, ReturnType.LEAF_CLASS))
        assert elem.find(".//{*}ExtrinsicObject").get("home") == home  # type: ignore[union-attr]

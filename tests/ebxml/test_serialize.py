"""Model -> ebRIM 3.0 (ebxml/serialize.py): canonical LeafClass, requests, RegistryResponse."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import (
    Association,
    DocumentEntry,
    Extras,
    ExtraSlot,
    Folder,
    ObjectRef,
    Submission,
    SubmissionSet,
)
from ebxml.parse import parse_provide_and_register, parse_submit_objects_request
from ebxml.serialize import (
    leaf_class,
    provide_and_register_request,
    registry_response,
    submit_objects_request,
)
from ebxml.vocabulary import (
    NS_RIM,
    NS_RS,
    NS_XDSB,
    NS_XOP,
    OBJECT_TYPE_CLASSIFICATION,
    OBJECT_TYPE_EXTERNAL_IDENTIFIER,
    OBJECT_TYPE_REGISTRY_PACKAGE,
    SUBMISSION_SET_NODE,
    UUID_PREFIX,
    DocumentEntryIdentifier,
    DocumentEntryScheme,
    ErrorSeverity,
    ResponseStatus,
)

RIM = f"{{{NS_RIM}}}"
RS = f"{{{NS_RS}}}"
DOC_ID = f"{UUID_PREFIX}3f2c1b4a-5d6e-4f70-8192-a3b4c5d6e7f8"


@pytest.fixture
def submission(fixture_xml, uuids) -> Submission:
    return parse_submit_objects_request(fixture_xml("iti42_symbolic.xml"), uuid_factory=uuids).value


def _local_names(elem: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in elem]


# --- leaf_class --------------------------------------------------------------------------


def test_leaf_class_children_follow_rim_xsd_order(submission) -> None:
    names = _local_names(leaf_class(submission.document_entries[0]))
    first = {name: names.index(name) for name in reversed(names)}
    last = {name: i for i, name in enumerate(names)}
    order = ["Slot", "Name", "Description", "Classification", "ExternalIdentifier"]
    for before, after in zip(order, order[1:], strict=False):
        assert last[before] < first[after]


def test_leaf_class_slots_in_table_order_then_extras(submission) -> None:
    elem = leaf_class(submission.document_entries[0])
    assert [s.get("name") for s in elem.iterfind(f"{RIM}Slot")] == [
        "creationTime",
        "hash",
        "languageCode",
        "legalAuthenticator",
        "urn:ihe:iti:xds:2013:referenceIdList",
        "repositoryUniqueId",
        "serviceStartTime",
        "serviceStopTime",
        "size",
        "sourcePatientId",
        "sourcePatientInfo",
        "URI",
        "urn:example:slot",
    ]


def test_size_text_is_written_back_as_sent(submission) -> None:
    elem = leaf_class(submission.document_entries[0])
    assert elem.findtext(f"{RIM}Slot[@name='size']/{RIM}ValueList/{RIM}Value") == "12a"


def test_nested_ids_are_uuid5_of_parent_and_scheme(submission) -> None:
    entry = submission.document_entries[0]
    first = leaf_class(entry)
    again = leaf_class(entry)
    ids = [c.get("id") for c in first.iter(f"{RIM}Classification", f"{RIM}ExternalIdentifier")]
    assert ids == [
        c.get("id") for c in again.iter(f"{RIM}Classification", f"{RIM}ExternalIdentifier")
    ]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(UUID_PREFIX) for i in ids)


def test_nested_ids_differ_between_objects(submission) -> None:
    entry = submission.document_entries[0]
    other = replace(entry, entry_uuid=DOC_ID)
    ids = {c.get("id") for c in leaf_class(entry).iter(f"{RIM}Classification")}
    other_ids = {c.get("id") for c in leaf_class(other).iter(f"{RIM}Classification")}
    assert ids.isdisjoint(other_ids)


def test_classifications_name_their_object(submission) -> None:
    entry = submission.document_entries[0]
    elem = leaf_class(entry)
    for c in elem.iterfind(f"{RIM}Classification"):
        assert (c.get("classifiedObject"), c.get("objectType")) == (
            entry.entry_uuid,
            OBJECT_TYPE_CLASSIFICATION,
        )
    for e in elem.iterfind(f"{RIM}ExternalIdentifier"):
        assert (e.get("registryObject"), e.get("objectType")) == (
            entry.entry_uuid,
            OBJECT_TYPE_EXTERNAL_IDENTIFIER,
        )


def test_external_identifier_names_are_itis(submission) -> None:
    elem = leaf_class(submission.document_entries[0])
    unique = elem.find(
        f"{RIM}ExternalIdentifier[@identificationScheme='{DocumentEntryIdentifier.UNIQUE_ID}']"
    )
    assert unique.find(f"{RIM}Name/{RIM}LocalizedString").get("value") == (
        "XDSDocumentEntry.uniqueId"
    )


def test_author_classification_has_empty_node_representation(submission) -> None:
    elem = leaf_class(submission.document_entries[0])
    author = elem.find(f"{RIM}Classification[@classificationScheme='{DocumentEntryScheme.AUTHOR}']")
    assert author.get("nodeRepresentation") == ""


def test_submission_set_leaf_nests_its_classification(submission) -> None:
    elem = leaf_class(submission.submission_set)
    assert elem.get("objectType") == OBJECT_TYPE_REGISTRY_PACKAGE
    nodes = [c.get("classificationNode") for c in elem.iterfind(f"{RIM}Classification")]
    assert SUBMISSION_SET_NODE in nodes


def test_status_is_written_when_set() -> None:
    entry = DocumentEntry(DOC_ID, availability_status="urn:x:status")
    assert leaf_class(entry).get("status") == "urn:x:status"


def test_long_uri_is_split_into_numbered_parts() -> None:
    # ITI TF-3 4.2.3.2.24
    uri = "http://example.org/" + "x" * 600
    elem = leaf_class(DocumentEntry(DOC_ID, uri=uri))
    values = [v.text for v in elem.iterfind(f"{RIM}Slot[@name='URI']/{RIM}ValueList/{RIM}Value")]
    assert len(values) == 3
    assert all(len(v) <= 256 for v in values)
    assert "".join(v.split("|", 1)[1] for v in values) == uri


def test_limited_metadata_is_a_classification_node() -> None:
    elem = leaf_class(DocumentEntry(DOC_ID, limited_metadata=True))
    nodes = [c.get("classificationNode") for c in elem.iterfind(f"{RIM}Classification")]
    assert nodes == [DocumentEntryScheme.LIMITED_METADATA]


# --- round trip --------------------------------------------------------------------------


def test_submission_round_trips(submission) -> None:
    again = parse_submit_objects_request(submit_objects_request(submission))
    assert again.errors == ()
    value = again.value
    assert value.submission_set == submission.submission_set
    assert value.document_entries == submission.document_entries
    assert value.folders == submission.folders
    assert value.associations == submission.associations
    assert value.object_refs == submission.object_refs


@pytest.mark.parametrize(
    "obj",
    [
        DocumentEntry(DOC_ID, limited_metadata=True, size=7, version="2", logical_id=DOC_ID),
        DocumentEntry(DOC_ID, extras=Extras(slots=(ExtraSlot("x", ("1", "2")),))),
        SubmissionSet(DOC_ID, limited_metadata=True, home="urn:oid:1.2.3"),
        Folder(DOC_ID, limited_metadata=True, availability_status=None),
        Association(DOC_ID, "urn:x:type", "a", "b", previous_version="1", new_status="s"),
    ],
    ids=["entry", "entry-extras", "submission-set", "folder", "association"],
)
def test_leaf_class_round_trips(obj) -> None:
    wrapper = etree.Element(f"{RIM}RegistryObjectList")
    wrapper.append(leaf_class(obj))
    from ebxml.parse import parse_registry_object_list

    parsed = parse_registry_object_list(wrapper, replace_symbolic_ids=False)
    assert parsed.value.objects == (obj,)


# --- whole messages validate against the XSDs --------------------------------------------


def test_submit_objects_request_validates(submission, assert_valid) -> None:
    assert_valid(submit_objects_request(submission))


def test_provide_and_register_request_validates(submission, assert_valid) -> None:
    doc_id = submission.document_entries[0].entry_uuid
    assert_valid(provide_and_register_request(submission, [(doc_id, "doc1@xdsi")]))


def test_provide_and_register_names_parts_by_cid(submission) -> None:
    doc_id = submission.document_entries[0].entry_uuid
    elem = provide_and_register_request(submission, [(doc_id, "doc 1@xdsi")])
    include = elem.find(f"{{{NS_XDSB}}}Document/{{{NS_XOP}}}Include")
    assert include.get("href") == "cid:doc%201@xdsi"


def test_provide_and_register_round_trips(submission, tmp_path) -> None:
    doc_id = submission.document_entries[0].entry_uuid
    elem = provide_and_register_request(submission, [(doc_id, "doc 1@xdsi")])

    class Part:
        content_id, content_type, path, size, sha1 = "doc 1@xdsi", "text/plain", tmp_path, 3, "f"

    parsed = parse_provide_and_register(elem, {"doc 1@xdsi": Part()}).value
    assert parsed.submission.document_entries == submission.document_entries
    assert [(d.id, d.path) for d in parsed.documents] == [(doc_id, tmp_path)]


# --- RegistryResponse --------------------------------------------------------------------


def test_success_response_has_no_error_list(assert_valid) -> None:
    elem = registry_response(RegistryResponse(ResponseStatus.SUCCESS))
    assert elem.get("status") == ResponseStatus.SUCCESS
    assert elem.find(f"{RS}RegistryErrorList") is None
    assert_valid(elem)


def test_error_response_lists_errors(assert_valid) -> None:
    errors = (
        RegistryError(ErrorCode.XDSMissingDocument, "no document", "Document01"),
        RegistryError.warning(ErrorCode.XDSExtraMetadataNotSaved, "dropped"),
    )
    elem = registry_response(RegistryResponse.from_errors(errors))
    error_list = elem.find(f"{RS}RegistryErrorList")
    assert error_list.get("highestSeverity") == ErrorSeverity.ERROR
    written = [
        (e.get("errorCode"), e.get("codeContext"), e.get("location"), e.get("severity"))
        for e in error_list
    ]
    assert written == [
        ("XDSMissingDocument", "no document", "Document01", ErrorSeverity.ERROR),
        ("XDSExtraMetadataNotSaved", "dropped", None, ErrorSeverity.WARNING),
    ]
    assert_valid(elem)


def test_warnings_only_have_warning_as_highest_severity() -> None:
    errors = (RegistryError.warning(ErrorCode.XDSExtraMetadataNotSaved, "dropped"),)
    elem = registry_response(RegistryResponse.from_errors(errors))
    assert elem.find(f"{RS}RegistryErrorList").get("highestSeverity") == ErrorSeverity.WARNING


def test_object_ref_only_submission_validates(assert_valid) -> None:
    refs = (ObjectRef(DOC_ID),)
    assert_valid(submit_objects_request(Submission(None, object_refs=refs)))


def test_with_patient_id_replaces_only_the_patient_id_identifier() -> None:
    from ebxml.model import DocumentEntry
    from ebxml.serialize import leaf_class, with_patient_id
    from ebxml.vocabulary import DocumentEntryIdentifier

    entry = DocumentEntry(
        entry_uuid="urn:uuid:0b1e5ba6-3b1f-4a0a-9f44-1d1c6f3c2a10",
        unique_id="1.2.3.4",
        patient_id="OLD^^^&1.2.3&ISO",
        source_patient_id="OLD^^^&1.2.3&ISO",
    )
    xml = etree.tostring(leaf_class(entry))
    moved = etree.fromstring(with_patient_id(xml, "NEW^^^&1.2.3&ISO"))
    values = {
        ei.get("identificationScheme"): ei.get("value")
        for ei in moved.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExternalIdentifier")
    }
    assert values[DocumentEntryIdentifier.PATIENT_ID] == "NEW^^^&1.2.3&ISO"
    assert values[DocumentEntryIdentifier.UNIQUE_ID] == "1.2.3.4"
    # sourcePatientId is the source's own id and stays as submitted
    assert b"OLD^^^&amp;1.2.3&amp;ISO" in etree.tostring(moved)

"""ebRIM 3.0 -> model (ebxml/parse.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from ebxml.errors import ErrorCode
from ebxml.model import Author, Code, ExtraClassification, ExtraExternalIdentifier, ExtraSlot
from ebxml.parse import (
    parse_provide_and_register,
    parse_registry_object_list,
    parse_submit_objects_request,
)
from ebxml.vocabulary import (
    DOC_ENTRY_STABLE,
    NS_LCM,
    NS_QUERY,
    NS_RIM,
    NS_XDSB,
    NS_XDSI,
    UUID_PREFIX,
    AssociationType,
)

REFERENCE = Path(
    os.environ.get(
        "XDSI_REFERENCE_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "reference")
    )
)
TESTKIT = REFERENCE / "testkit" / "tests"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True)
RIM = f"{{{NS_RIM}}}"
LCM = f"{{{NS_LCM}}}"
XDSB = f"{{{NS_XDSB}}}"
UUID1 = f"{UUID_PREFIX}00000000-0000-4000-8000-000000000001"
EXISTING = f"{UUID_PREFIX}0e4d7c2e-6a7f-4e5e-9c2b-1d2e3f405060"


@dataclass(frozen=True)
class FakeAttachment:
    content_id: str
    content_type: str
    path: Path
    size: int
    sha1: str


@pytest.fixture
def submission(fixture_xml, uuids):
    result = parse_submit_objects_request(fixture_xml("iti42_symbolic.xml"), uuid_factory=uuids)
    # the fixture's Package99 and Link01 are not XDS objects: warned about, not errors
    assert result.ok
    assert {e.code for e in result.errors} == {ErrorCode.XDSExtraMetadataNotSaved}
    return result.value


def _rim(xml: str) -> etree._Element:
    return etree.fromstring(
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{NS_LCM}" xmlns:rim="{NS_RIM}">'
        f"<rim:RegistryObjectList>{xml}</rim:RegistryObjectList></lcm:SubmitObjectsRequest>",
        SAFE,
    )


def _doc(slots: str = "", children: str = "", doc_id: str = "Document01") -> str:
    return (
        f'<rim:ExtrinsicObject id="{doc_id}" mimeType="text/plain" objectType="{DOC_ENTRY_STABLE}">'
        f"{slots}{children}</rim:ExtrinsicObject>"
    )


def _slot(name: str, *values: str) -> str:
    inner = "".join(f"<rim:Value>{v}</rim:Value>" for v in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{inner}</rim:ValueList></rim:Slot>'


# --- symbolic ids ----------------------------------------------------------------------


def test_symbolic_ids_are_replaced_by_fresh_uuids(submission) -> None:
    assert submission.symbolic_ids == {
        "Document01": UUID1,
        "SubmissionSet01": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000002",
        "cl22": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000003",
        "Folder01": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000004",
        "as01": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000005",
        "as02": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000006",
        "as03": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000007",
        "as04": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000008",
        "Package99": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000009",
        "Link01": f"{UUID_PREFIX}00000000-0000-4000-8000-000000000010",
    }


def test_object_ids_use_the_replacement(submission) -> None:
    ids = submission.symbolic_ids
    assert submission.document_entries[0].entry_uuid == ids["Document01"]
    assert submission.submission_set.entry_uuid == ids["SubmissionSet01"]
    assert submission.folders[0].entry_uuid == ids["Folder01"]


def test_association_ends_use_the_replacement(submission) -> None:
    ids = submission.symbolic_ids
    ends = [(a.source, a.target) for a in submission.associations]
    assert ends == [
        (ids["SubmissionSet01"], ids["Document01"]),
        (ids["SubmissionSet01"], ids["Folder01"]),
        (ids["Folder01"], ids["Document01"]),
        (ids["Document01"], EXISTING),
    ]


def test_given_uuids_are_kept() -> None:
    doc = _doc(doc_id=EXISTING)
    result = parse_submit_objects_request(_rim(doc))
    assert result.value.document_entries[0].entry_uuid == EXISTING
    assert result.value.symbolic_ids == {}


def test_default_uuid_factory_gives_distinct_uuid4s() -> None:
    result = parse_submit_objects_request(_rim(_doc(doc_id="a") + _doc(doc_id="b")))
    first, second = (d.entry_uuid for d in result.value.document_entries)
    assert first != second
    assert first.startswith(UUID_PREFIX) and len(first) == len(UUID1)


def test_unresolved_symbolic_reference_is_left_for_validation() -> None:
    assoc = (
        f'<rim:Association id="a" associationType="{AssociationType.HAS_MEMBER}"'
        ' sourceObject="Nowhere" targetObject="Document01"/>'
    )
    result = parse_submit_objects_request(_rim(_doc() + assoc))
    assert result.value.associations[0].source == "Nowhere"


def test_duplicate_object_id_is_reported() -> None:
    result = parse_submit_objects_request(_rim(_doc() + _doc()))
    assert [e.code for e in result.errors] == [ErrorCode.XDSRegistryMetadataError]


# --- DocumentEntry ---------------------------------------------------------------------


def test_document_entry_attributes(submission) -> None:
    entry = submission.document_entries[0]
    assert (entry.object_type, entry.mime_type) == (DOC_ENTRY_STABLE, "text/plain")
    assert (entry.title, entry.comments) == ("Chest X-ray report", "Two views")
    assert entry.availability_status is None  # not sent: the registry sets it


def test_document_entry_slots(submission) -> None:
    entry = submission.document_entries[0]
    assert entry.creation_time == "20240102030405"
    assert entry.hash == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert entry.language_code == "en-US"
    assert entry.legal_authenticator == "^Welby^Marcus^^^Dr^MD"
    assert entry.repository_unique_id == "1.3.6.1.4.1.21367.2010.1.2.1125"
    assert (entry.service_start_time, entry.service_stop_time) == ("200401020304", "200401020305")
    assert entry.source_patient_id == "P1^^^&1.2.3.4&ISO"
    assert entry.source_patient_info == ("PID-3|P1^^^&1.2.3.4&ISO", "PID-5|Doe^Jane^^^")
    assert entry.uri == "http://example.org/doc"
    assert entry.reference_ids == (
        "A123^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession",
        "1.2.840.99^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
    )


def test_document_entry_codes(submission) -> None:
    entry = submission.document_entries[0]
    assert entry.class_code == Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports")
    assert entry.type_code == Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")
    assert entry.format_code.code == "urn:ihe:rad:TEXT"
    assert entry.healthcare_facility_type_code.code == "Outpatient"
    assert entry.practice_setting_code.code == "Radiology"
    assert entry.confidentiality_codes == (Code("N", "2.16.840.1.113883.5.25", "normal"),)
    assert entry.event_codes == (
        Code("CR", "DCM", "Computed Radiography"),
        Code("T-D3000", "SRT", "Chest"),
    )


def test_document_entry_author(submission) -> None:
    assert submission.document_entries[0].authors == (
        Author(
            person="^Welby^Marcus^^^Dr^MD",
            institutions=("Springfield Radiology", "General Hospital"),
            roles=("Radiologist",),
            specialties=("Radiology",),
            telecommunications=("^^Internet^welby@example.org",),
        ),
    )


def test_document_entry_external_identifiers(submission) -> None:
    entry = submission.document_entries[0]
    assert (entry.patient_id, entry.unique_id) == ("P1^^^&1.2.3.4&ISO", "1.2.3.4.5.100")


def test_unknown_slot_is_kept(submission) -> None:
    extras = submission.document_entries[0].extras
    assert extras.slots == (ExtraSlot("urn:example:slot", ("x", "y")),)


def test_unknown_classification_is_kept(submission) -> None:
    extras = submission.document_entries[0].extras
    assert extras.classifications == (
        ExtraClassification(
            "urn:uuid:11111111-2222-4333-8444-555555555555",
            "local-code",
            "Local",
            (ExtraSlot("codingScheme", ("urn:example:scheme",)),),
        ),
    )


def test_unknown_external_identifier_is_kept(submission) -> None:
    extras = submission.document_entries[0].extras
    assert extras.external_identifiers == (
        ExtraExternalIdentifier(
            "urn:uuid:66666666-7777-4888-9999-000000000000", "local-42", "Local.id"
        ),
    )


def test_size_that_is_not_an_integer_is_kept_as_text(submission) -> None:
    entry = submission.document_entries[0]
    assert (entry.size, entry.size_text) == (None, "12a")


def test_integer_size_is_parsed() -> None:
    result = parse_submit_objects_request(_rim(_doc(_slot("size", "1024"))))
    entry = result.value.document_entries[0]
    assert (entry.size, entry.size_text) == (1024, None)


def test_negative_size_is_kept_as_text() -> None:
    result = parse_submit_objects_request(_rim(_doc(_slot("size", "-1"))))
    assert result.value.document_entries[0].size_text == "-1"


def test_single_valued_slot_with_two_values_is_reported() -> None:
    result = parse_submit_objects_request(_rim(_doc(_slot("creationTime", "2004", "2005"))))
    assert [(e.code, e.location) for e in result.errors] == [
        (ErrorCode.XDSRegistryMetadataError, "Document01")
    ]
    assert result.value.document_entries[0].creation_time == "2004"


def test_repeated_slot_is_reported() -> None:
    slots = _slot("hash", "a") + _slot("hash", "b")
    result = parse_submit_objects_request(_rim(_doc(slots)))
    assert len(result.errors) == 1


def test_error_code_is_the_callers() -> None:
    slots = _slot("hash", "a") + _slot("hash", "b")
    result = parse_submit_objects_request(
        _rim(_doc(slots)), default_code=ErrorCode.XDSRepositoryMetadataError
    )
    assert result.errors[0].code == ErrorCode.XDSRepositoryMetadataError


def test_two_class_codes_are_reported() -> None:
    code = (
        '<rim:Classification id="c{n}" classifiedObject="Document01" nodeRepresentation="X"'
        ' classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"/>'
    )
    result = parse_submit_objects_request(_rim(_doc(children=code.format(n=1) + code.format(n=2))))
    assert len(result.errors) == 1


def test_long_uri_parts_are_joined() -> None:
    # ITI TF-3 4.2.3.2.24
    result = parse_submit_objects_request(_rim(_doc(_slot("URI", "2|/b", "1|http://a"))))
    assert result.value.document_entries[0].uri == "http://a/b"
    assert result.errors == ()


def test_value_whitespace_is_trimmed() -> None:
    result = parse_submit_objects_request(_rim(_doc(_slot("hash", "\n  abc  \n"))))
    assert result.value.document_entries[0].hash == "abc"


def test_limited_metadata_classification() -> None:
    node = (
        '<rim:Classification id="lm" classifiedObject="Document01"'
        ' classificationNode="urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"/>'
    )
    result = parse_submit_objects_request(_rim(_doc(children=node)))
    assert result.value.document_entries[0].limited_metadata is True


def test_top_level_classification_is_attached_to_its_object() -> None:
    code = (
        '<rim:Classification id="c1" classifiedObject="Document01" nodeRepresentation="X"'
        ' classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"/>'
    )
    result = parse_submit_objects_request(_rim(_doc() + code))
    assert result.value.document_entries[0].class_code == Code("X", "")


# --- SubmissionSet, Folder, Association, ObjectRef ---------------------------------------


def test_submission_set_from_top_level_classification(submission) -> None:
    ss = submission.submission_set
    assert (ss.unique_id, ss.source_id, ss.patient_id) == (
        "1.2.3.4.5.200",
        "1.2.3.4.5",
        "P1^^^&1.2.3.4&ISO",
    )
    assert ss.submission_time == "20240102030500"
    assert ss.content_type_code == Code(
        "18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"
    )
    assert ss.authors == (Author(person="^Welby^Marcus^^^Dr^MD"),)
    assert ss.intended_recipients[0].startswith("Some Hospital")
    assert ss.title == "Imaging results"


def test_folder_from_nested_classification(submission) -> None:
    folder = submission.folders[0]
    assert (folder.unique_id, folder.patient_id) == ("1.2.3.4.5.300", "P1^^^&1.2.3.4&ISO")
    assert folder.code_list == (Code("Radiology", "Connect-a-thon folderCodeList", "Radiology"),)
    assert folder.last_update_time == "20240102030500"


def test_association_slots_and_documentation(submission) -> None:
    has_member, _, _, rplc = submission.associations
    assert has_member.submission_set_status == "Original"
    assert rplc.association_type == AssociationType.RPLC
    assert rplc.documentation == Code("Corrected", "urn:example:reasons", "Corrected report")


def test_object_ref(submission) -> None:
    assert [r.id for r in submission.object_refs] == [EXISTING]


def test_unknown_objects_are_listed(submission) -> None:
    ids = submission.symbolic_ids
    assert submission.unknown_objects == (ids["Package99"], ids["Link01"])


def test_second_submission_set_is_reported() -> None:
    package = (
        '<rim:RegistryPackage id="{id}"><rim:Classification id="c{id}" classifiedObject="{id}"'
        ' classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/></rim:RegistryPackage>'
    )
    result = parse_submit_objects_request(_rim(package.format(id="s1") + package.format(id="s2")))
    assert len(result.errors) == 1
    assert result.value.submission_set is not None


def test_missing_registry_object_list_is_reported() -> None:
    result = parse_submit_objects_request(etree.Element(f"{LCM}SubmitObjectsRequest"))
    assert result.value.submission_set is None
    assert len(result.errors) == 1


# --- ProvideAndRegister ----------------------------------------------------------------


def _pnr(fixture_xml, *documents: etree._Element) -> etree._Element:
    root = etree.Element(f"{XDSB}ProvideAndRegisterDocumentSetRequest")
    root.append(fixture_xml("iti42_symbolic.xml"))
    root.extend(documents)
    return root


def _document(doc_id: str, href: str | None) -> etree._Element:
    document = etree.Element(f"{XDSB}Document", id=doc_id)
    if href is not None:
        etree.SubElement(document, "{http://www.w3.org/2004/08/xop/include}Include", href=href)
    return document


def test_pnr_document_resolves_url_encoded_cid(fixture_xml, uuids, tmp_path) -> None:
    attachment = FakeAttachment("doc 1@example.org", "text/plain", tmp_path / "a", 5, "ab")
    elem = _pnr(fixture_xml, _document("Document01", "cid:doc%201%40example.org"))
    result = parse_provide_and_register(
        elem, {attachment.content_id: attachment}, uuid_factory=uuids
    )
    (document,) = result.value.documents
    assert (document.id, document.path, document.size, document.sha1) == (
        UUID1,
        attachment.path,
        5,
        "ab",
    )
    assert (document.content_type, document.content_id) == ("text/plain", "doc 1@example.org")
    assert result.value.unreferenced_attachments == ()


def test_pnr_document_id_follows_the_extrinsic_object(fixture_xml, uuids) -> None:
    result = parse_provide_and_register(
        _pnr(fixture_xml, _document("Document01", "cid:x")), {}, uuid_factory=uuids
    )
    entry = result.value.submission.document_entries[0]
    assert result.value.documents[0].id == entry.entry_uuid


def test_pnr_document_without_include_has_no_path(fixture_xml) -> None:
    result = parse_provide_and_register(_pnr(fixture_xml, _document("Document01", None)), {})
    assert result.value.documents[0].path is None
    assert result.value.documents[0].content_id is None


def test_pnr_include_naming_no_attachment_has_no_path(fixture_xml) -> None:
    result = parse_provide_and_register(_pnr(fixture_xml, _document("Document01", "cid:gone")), {})
    assert result.value.documents[0].path is None
    assert result.value.documents[0].content_id == "gone"


def test_pnr_unreferenced_attachments_are_listed(fixture_xml, tmp_path) -> None:
    used = FakeAttachment("a", "text/plain", tmp_path / "a", 1, "")
    stray = FakeAttachment("b", "text/plain", tmp_path / "b", 1, "")
    result = parse_provide_and_register(
        _pnr(fixture_xml, _document("Document01", "cid:a")), {"a": used, "b": stray}
    )
    assert result.value.unreferenced_attachments == ("b",)


def test_pnr_default_code_is_the_repositorys() -> None:
    empty = etree.Element(f"{XDSB}ProvideAndRegisterDocumentSetRequest")
    result = parse_provide_and_register(empty, {})
    assert result.errors[0].code == ErrorCode.XDSRepositoryMetadataError


# --- LeafClass lists (query responses) keep ids ------------------------------------------


def test_object_list_without_replacement_keeps_symbolic_ids(fixture_xml) -> None:
    object_list = fixture_xml("iti42_symbolic.xml").find(f"{RIM}RegistryObjectList")
    result = parse_registry_object_list(object_list, replace_symbolic_ids=False)
    assert result.value.symbolic_ids == {}
    assert result.value.objects[0].entry_uuid == "Document01"


# --- the NIST testkit --------------------------------------------------------------------

_SUBMISSION_ROOTS = {
    f"{{{NS_LCM}}}SubmitObjectsRequest",
    f"{{{NS_XDSB}}}ProvideAndRegisterDocumentSetRequest",
}
# tested in test_wire.py / test_wire_retrieve.py
_REQUEST_ROOTS = {
    f"{{{NS_QUERY}}}AdhocQueryRequest",
    f"{{{NS_XDSB}}}RetrieveDocumentSetRequest",
    f"{{{NS_XDSI}}}RetrieveImagingDocumentSetRequest",
}
_EBRIM_2_1 = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"


def _testkit_roots() -> dict[Path, str]:
    if not TESTKIT.exists():
        return {}
    paths = sorted(p for p in TESTKIT.rglob("*.xml") if p.name != "testplan.xml")
    return {p: etree.parse(str(p), SAFE).getroot().tag for p in paths}


_ROOTS = _testkit_roots()


def test_testkit_files_are_all_known_message_kinds() -> None:
    if not _ROOTS:
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail(f"testkit not found: {TESTKIT}")
        pytest.skip(f"testkit not found: {TESTKIT}")
    known = _SUBMISSION_ROOTS | _REQUEST_ROOTS | {f"{{{_EBRIM_2_1}}}SubmitObjectsRequest"}
    assert {tag for tag in _ROOTS.values() if tag not in known} == set()


@pytest.mark.parametrize(
    "path",
    [p for p, tag in _ROOTS.items() if tag in _SUBMISSION_ROOTS],
    ids=lambda p: str(p.relative_to(TESTKIT)),
)
def test_testkit_ebrim3_metadata_parses(path: Path) -> None:
    root = etree.parse(str(path), SAFE).getroot()
    if root.tag == f"{XDSB}ProvideAndRegisterDocumentSetRequest":
        result = parse_provide_and_register(root, {})
        submission = result.value.submission
    else:
        result = parse_submit_objects_request(root)
        submission = result.value
    assert result.errors == ()
    assert submission.submission_set is not None
    assert submission.document_entries
    assert submission.unknown_objects == ()


def test_unknown_objects_are_answered_with_extra_metadata_not_saved(fixture_xml, uuids) -> None:
    # ITI TF-3 Table 4.2.4.1-2: XDSExtraMetadataNotSaved is a warning, the submission stands
    result = parse_submit_objects_request(fixture_xml("iti42_symbolic.xml"), uuid_factory=uuids)
    warned = {e.location for e in result.errors if e.code == ErrorCode.XDSExtraMetadataNotSaved}
    assert warned == {
        result.value.symbolic_ids["Package99"],
        result.value.symbolic_ids["Link01"],
    }
    assert all(not e.is_error for e in result.errors)


def test_association_name_is_answered_with_extra_metadata_not_saved() -> None:
    result = parse_submit_objects_request(
        _rim(
            '<rim:Association id="a1" associationType="urn:ihe:iti:2007:AssociationType:RPLC"'
            ' sourceObject="Document01" targetObject="urn:uuid:0e4d7c2e-6a7f-4e5e-9c2b-1d2e3f405060">'
            '<rim:Name><rim:LocalizedString value="why"/></rim:Name></rim:Association>'
        )
    )
    assert [(e.code, e.is_error) for e in result.errors] == [
        (ErrorCode.XDSExtraMetadataNotSaved, False)
    ]


def test_unknown_author_slot_is_answered_with_extra_metadata_not_saved() -> None:
    author = (
        '<rim:Classification id="au" classifiedObject="Document01" nodeRepresentation=""'
        ' classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d">'
        '<rim:Slot name="authorPerson"><rim:ValueList><rim:Value>^Doe^Jane</rim:Value>'
        "</rim:ValueList></rim:Slot>"
        '<rim:Slot name="authorShoeSize"><rim:ValueList><rim:Value>42</rim:Value>'
        "</rim:ValueList></rim:Slot></rim:Classification>"
    )
    result = parse_submit_objects_request(_rim(_doc(children=author)))
    assert ErrorCode.XDSExtraMetadataNotSaved in {e.code for e in result.errors}
    assert result.ok
    (entry,) = result.value.document_entries
    assert entry.authors[0].person == "^Doe^Jane"

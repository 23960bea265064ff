"""conformance/testkit/metadata.py: symbols, uniqueIds, patient ids and UUIDs as the
toolkit assigns them before sending."""

from __future__ import annotations

from lxml import etree

from conformance.testkit.metadata import prepare_submission, substitute
from ebxml.vocabulary import NS_LCM, NS_RIM, DocumentEntryIdentifier, SubmissionSetIdentifier

SUBMISSION = f"""<lcm:SubmitObjectsRequest xmlns:lcm="{NS_LCM}" xmlns:rim="{NS_RIM}">
 <rim:RegistryObjectList>
  <rim:ExtrinsicObject id="Document01">
   <rim:ExternalIdentifier id="ei1" registryObject="Document01"
       identificationScheme="{DocumentEntryIdentifier.UNIQUE_ID}" value="Document01"/>
   <rim:ExternalIdentifier id="ei2" registryObject="Document01"
       identificationScheme="{DocumentEntryIdentifier.PATIENT_ID}" value="$patientid$"/>
  </rim:ExtrinsicObject>
  <rim:RegistryPackage id="SubmissionSet01">
   <rim:ExternalIdentifier id="ei3" registryObject="SubmissionSet01"
       identificationScheme="{SubmissionSetIdentifier.UNIQUE_ID}" value="1.2.3"/>
   <rim:ExternalIdentifier id="ei4" registryObject="SubmissionSet01"
       identificationScheme="{SubmissionSetIdentifier.PATIENT_ID}" value="OLD^^^&amp;1.2&amp;ISO"/>
  </rim:RegistryPackage>
  <rim:Association id="a1" sourceObject="SubmissionSet01" targetObject="Document01"/>
 </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>"""
PATIENT = "P1^^^&1.3.6&ISO"


def _uids():
    counter = iter(range(1, 100))
    return lambda: f"9.9.{next(counter)}"


def _prepare(**overrides):
    options = {"assign_uuids": False, "assign_uids": True, "patient_id": PATIENT}
    options.update(overrides)
    return prepare_submission(etree.fromstring(SUBMISSION), new_uid=_uids(), **options)


def _value(root: etree._Element, ident: str) -> str:
    return root.xpath(f"//*[@id='{ident}']/@value")[0]


def test_substitute_replaces_symbols_in_text_and_attributes() -> None:
    root = etree.fromstring("<q a=\"x$uid$\"><v>('$uid$')</v></q>")
    substitute(root, {"$uid$": "1.2&3"})
    assert (root.get("a"), root[0].text) == ("x1.2&3", "('1.2&3')")


def test_unique_ids_are_replaced_by_fresh_ones() -> None:
    prepared = _prepare()
    assert (_value(prepared.element, "ei1"), _value(prepared.element, "ei3")) == ("9.9.1", "9.9.2")


def test_assigned_uids_are_keyed_by_the_object_id_in_the_file() -> None:
    assert _prepare().assigned_uids == {"Document01": "9.9.1", "SubmissionSet01": "9.9.2"}


def test_no_assign_uids_keeps_the_file_values() -> None:
    assert _prepare(assign_uids=False).assigned_uids["SubmissionSet01"] == "1.2.3"


def test_patient_id_is_set_on_every_patient_identifier() -> None:
    prepared = _prepare()
    assert {_value(prepared.element, "ei2"), _value(prepared.element, "ei4")} == {PATIENT}


def test_no_patient_id_keeps_the_file_value() -> None:
    prepared = _prepare(patient_id=None)
    assert prepared.assigned_patient_ids["SubmissionSet01"] == "OLD^^^&1.2&ISO"


def test_assign_uuids_rewrites_ids_and_references() -> None:
    prepared = _prepare(assign_uuids=True)
    doc_uuid = prepared.assigned_uuids["Document01"]
    association = prepared.element.xpath("//*[local-name()='Association']")[0]
    assert doc_uuid.startswith("urn:uuid:")
    assert association.get("targetObject") == doc_uuid


def test_without_assign_uuids_symbolic_ids_are_sent() -> None:
    prepared = _prepare()
    assert prepared.assigned_uuids == {}
    assert prepared.element.xpath("//*[local-name()='ExtrinsicObject']/@id") == ["Document01"]

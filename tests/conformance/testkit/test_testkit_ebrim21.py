"""conformance/testkit/ebrim21.py: ebRIM 2.1 metadata files become schema-valid 3.0."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from conformance.testkit.ebrim21 import is_ebrim21, to_ebrim30
from ebxml.vocabulary import NS_LCM, NS_RIM, AssociationType

REFERENCE = Path(
    os.environ.get(
        "XDSI_REFERENCE_DIR", str(Path(__file__).resolve().parents[4] / "shared" / "reference")
    )
)
TESTS = REFERENCE / "testkit" / "tests"
LCM_XSD = REFERENCE / "schemas" / "nist-toolkit" / "v3" / "lcm.xsd"
RIM21 = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
RS21 = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"


def _missing(reason: str) -> None:
    if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
        pytest.fail(f"XDSI_REQUIRE_INTEROP=1 but {reason}")
    pytest.skip(reason)


def _files_21() -> list[Path]:
    if not TESTS.is_dir():
        return []
    return sorted(
        f
        for f in TESTS.rglob("*.xml")
        if f.name != "testplan.xml" and is_ebrim21(etree.parse(str(f)).getroot())
    )


SMALL = f"""<rs:SubmitObjectsRequest xmlns:rs="{RS21}">
  <rim:LeafRegistryObjectList xmlns:rim="{RIM21}">
    <rim:ExtrinsicObject id="Document01" mimeType="text/plain"
        objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
      <rim:Name><rim:LocalizedString value="Doc"/></rim:Name>
      <rim:Slot name="creationTime"><rim:ValueList><rim:Value>2006</rim:Value></rim:ValueList></rim:Slot>
      <rim:ExternalIdentifier value="1.2" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"/>
    </rim:ExtrinsicObject>
    <rim:Association sourceObject="SubmissionSet01" targetObject="Document01" associationType="RPLC"/>
  </rim:LeafRegistryObjectList>
</rs:SubmitObjectsRequest>"""


def _small() -> etree._Element:
    return to_ebrim30(etree.fromstring(SMALL))


def test_submit_objects_request_moves_to_lcm_namespace() -> None:
    assert _small().tag == f"{{{NS_LCM}}}SubmitObjectsRequest"


def test_leaf_registry_object_list_becomes_registry_object_list() -> None:
    assert _small()[0].tag == f"{{{NS_RIM}}}RegistryObjectList"


def test_slot_is_moved_before_name() -> None:
    extrinsic = _small()[0][0]
    assert [etree.QName(c).localname for c in extrinsic] == ["Slot", "Name", "ExternalIdentifier"]


def test_external_identifier_gets_id_and_registry_object() -> None:
    identifier = _small()[0][0][2]
    assert identifier.get("registryObject") == "Document01"
    assert identifier.get("id", "").startswith("urn:uuid:")


def test_association_type_short_name_becomes_urn() -> None:
    association = _small()[0][1]
    assert association.get("associationType") == AssociationType.RPLC
    assert association.get("id", "").startswith("urn:uuid:")


def test_ebrim30_document_is_returned_unchanged() -> None:
    root = etree.fromstring(f'<lcm:SubmitObjectsRequest xmlns:lcm="{NS_LCM}"/>')
    assert to_ebrim30(root) is root


def test_the_subset_holds_fifteen_ebrim21_files() -> None:
    if not TESTS.is_dir():
        _missing(f"the NIST testkit subset is not at {TESTS}")
    assert len(_files_21()) == 15


@pytest.mark.parametrize(
    "path", _files_21(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}"
)
def test_converted_file_validates_against_lcm_xsd(path: Path) -> None:
    if not LCM_XSD.is_file():
        _missing(f"{LCM_XSD} is missing")
    schema = etree.XMLSchema(etree.parse(str(LCM_XSD)))
    converted = etree.fromstring(etree.tostring(to_ebrim30(etree.parse(str(path)).getroot())))
    assert schema.validate(converted), "\n".join(str(e) for e in schema.error_log)

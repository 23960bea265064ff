"""Shared fixtures for the ebxml wire-format tests: hand-written fixture files, the
reference XSDs and testkit (skipped when absent unless XDSI_REQUIRE_INTEROP=1)."""

from __future__ import annotations

import copy
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ebxml"
REFERENCE = Path(
    os.environ.get("XDSI_REFERENCE_DIR", str(REPO_ROOT.parent / "shared" / "reference"))
)
SCHEMAS = REFERENCE / "schemas" / "nist-toolkit" / "v3"
TESTKIT = REFERENCE / "testkit" / "tests"
# Every message xdsi writes, by the schema that defines its root element
_SCHEMA_FILES = (
    "rs.xsd",
    "lcm.xsd",
    "query.xsd",
    "rim.xsd",
    "XDS.b_DocumentRepository.xsd",
    "XDSI.b_ImagingDocumentSource.xsd",
)
_XSD = "http://www.w3.org/2001/XMLSchema"
_XOP_INCLUDE = "{http://www.w3.org/2004/08/xop/include}Include"

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def require_reference(path: Path) -> None:
    """Skip when reference material is absent; fail instead under XDSI_REQUIRE_INTEROP=1."""
    if path.exists():
        return
    message = f"reference material not found: {path}"
    if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
        pytest.fail(message)
    pytest.skip(message)


def parse_file(path: Path) -> etree._Element:
    return etree.parse(str(path), SAFE_PARSER).getroot()


@pytest.fixture
def fixture_xml() -> Callable[[str], etree._Element]:
    return lambda name: parse_file(FIXTURES / name)


@pytest.fixture
def uuids() -> Callable[[], uuid.UUID]:
    """A deterministic uuid factory: 00000000-0000-4000-8000-000000000001, ...02, ..."""
    counter = itertools.count(1)
    return lambda: uuid.UUID(f"00000000-0000-4000-8000-{next(counter):012d}")


@pytest.fixture(scope="session")
def _schema() -> etree.XMLSchema:
    require_reference(SCHEMAS)
    root = etree.Element(f"{{{_XSD}}}schema", nsmap={"xs": _XSD})
    for name in _SCHEMA_FILES:
        document = etree.parse(str(SCHEMAS / name)).getroot()
        etree.SubElement(
            root,
            f"{{{_XSD}}}import",
            namespace=document.get("targetNamespace"),
            schemaLocation=(SCHEMAS / name).as_uri(),
        )
    return etree.XMLSchema(root)


def _xop_decoded(elem: etree._Element) -> etree._Element:
    """The XOP infoset (XOP 1.0 3.2): each xop:Include replaced by base64 content, as an
    MTOM receiver reconstructs it before schema validation."""
    decoded = copy.deepcopy(elem)
    for include in list(decoded.iter(_XOP_INCLUDE)):
        parent = include.getparent()
        parent.remove(include)
        parent.text = "AAEC"
    return decoded


@pytest.fixture
def assert_valid(_schema: etree.XMLSchema) -> Callable[[etree._Element], None]:
    def check(elem: etree._Element) -> None:
        document = _xop_decoded(elem)
        if not _schema.validate(document):
            raise AssertionError(str(_schema.error_log))

    return check


def testkit_files() -> Iterator[Path]:
    if TESTKIT.exists():
        yield from sorted(p for p in TESTKIT.rglob("*.xml") if p.name != "testplan.xml")

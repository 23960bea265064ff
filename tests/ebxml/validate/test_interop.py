"""The RAD-68 metadata gold standard of the NIST testkit (ids_2018-4801a) passes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from ebxml.errors import ErrorCode
from ebxml.parse import parse_submit_objects_request
from ebxml.validate import validate_submission
from ebxml.vocabulary import NS_LCM, Transaction

REFERENCE = Path("/work/shared/reference")
GOLD = REFERENCE / "testkit/tests/ids_2018-4801a/ValidateMetadata/metadata-evaluate.xml"


def gold_standard() -> etree._Element:
    if not GOLD.exists():
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail(f"reference metadata missing: {GOLD}")
        pytest.skip(f"reference metadata missing: {GOLD}")
    root = etree.parse(str(GOLD)).getroot()
    return root.find(f"{{{NS_LCM}}}SubmitObjectsRequest")


def test_rad68_gold_standard_metadata_has_no_findings():
    parsed = parse_submit_objects_request(
        gold_standard(), default_code=ErrorCode.XDSRepositoryMetadataError
    )
    findings = validate_submission(
        parsed.value, Transaction.RAD68, default_code=ErrorCode.XDSRepositoryMetadataError
    )
    assert findings == []

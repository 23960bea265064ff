"""validate_provide: ITI-41 documents against their DocumentEntries (ITI TF-2 3.41.4.1.3)."""

from __future__ import annotations

import fixtures as fx

from ebxml.errors import ErrorCode, RegistryError
from ebxml.validate import rules
from ebxml.validate.provide import validate_provide


def only(findings: list[RegistryError], rule: rules.Rule) -> RegistryError:
    assert len(findings) == 1, findings
    (finding,) = findings
    assert finding.code == rule.code
    assert f"[{rule.id};" in finding.context
    return finding


def test_valid_request_has_no_findings():
    assert validate_provide(fx.provide_request(), []) == []


def test_document_may_be_named_by_uuid():
    assert validate_provide(fx.provide_request(None, fx.document(fx.DE_ID)), []) == []


def test_doc_entry_without_document_is_missing_document():
    request = fx.provide_request(None, fx.document("Document02"))
    findings = [f for f in validate_provide(request, []) if f.code == ErrorCode.XDSMissingDocument]
    finding = only(findings, rules.DOCUMENT_FOR_ENTRY)
    assert "Document01" in finding.context and fx.document_entry().unique_id in finding.context


def test_document_without_content_is_missing_document():
    request = fx.provide_request(None, fx.document(path=None))
    only(validate_provide(request, []), rules.DOCUMENT_FOR_ENTRY)


def test_document_without_doc_entry_is_missing_metadata():
    request = fx.provide_request(None, fx.document(), fx.document("Document02"))
    finding = only(validate_provide(request, []), rules.ENTRY_FOR_DOCUMENT)
    assert finding.location == "Document02"


def test_unreferenced_attachment_is_missing_metadata():
    finding = only(
        validate_provide(fx.provide_request(), ["stray@example.org"]), rules.ENTRY_FOR_DOCUMENT
    )
    assert "cid:stray@example.org" in finding.context


def test_submitted_hash_must_match_document():
    submission = fx.with_entry(fx.provide_submission(), hash="0" * 40)
    only(validate_provide(fx.provide_request(submission), []), rules.HASH_MATCHES)


def test_submitted_hash_compares_case_insensitively():
    submission = fx.with_entry(fx.provide_submission(), hash=fx.CONTENT_SHA1.upper())
    assert validate_provide(fx.provide_request(submission), []) == []


def test_submitted_size_must_match_document():
    submission = fx.with_entry(fx.provide_submission(), size=len(fx.CONTENT) + 1)
    only(validate_provide(fx.provide_request(submission), []), rules.SIZE_MATCHES)


def test_document_sent_twice_is_duplicate():
    request = fx.provide_request(None, fx.document(), fx.document())
    finding = only(validate_provide(request, []), rules.DOCUMENT_ONCE)
    assert finding.code == ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage

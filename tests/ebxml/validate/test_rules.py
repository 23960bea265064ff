"""Rule constants and the RegistryError a finding becomes."""

from __future__ import annotations

from ebxml.errors import ErrorCode
from ebxml.validate import rules
from ebxml.vocabulary import ErrorSeverity


def test_rule_without_code_uses_the_actor_default():
    finding = rules.ATTRIBUTE_REQUIRED.finding(
        ErrorCode.XDSRepositoryMetadataError,
        "Document01",
        object="DocumentEntry Document01",
        attribute="classCode",
        column="ITI-41 (XDS DS)",
    )
    assert finding.code == ErrorCode.XDSRepositoryMetadataError
    assert finding.location == "Document01"
    assert finding.context == (
        "DocumentEntry Document01 has no classCode, which ITI-41 (XDS DS) requires"
        " [attribute-required; ITI TF-3 Table 4.3.1-3]"
    )


def test_rule_with_code_ignores_the_default():
    finding = rules.DOCUMENT_FOR_ENTRY.finding(
        ErrorCode.XDSRegistryMetadataError, object="DocumentEntry Document01"
    )
    assert finding.code == ErrorCode.XDSMissingDocument


def test_warning_rule_gives_warning():
    finding = rules.AVAILABILITY_STATUS_SET_BY_REGISTRY.finding(
        ErrorCode.XDSRegistryMetadataError, object="Folder F", value="Deprecated"
    )
    assert finding.severity == ErrorSeverity.WARNING and not finding.is_error


def test_rule_ids_are_unique_and_every_rule_cites_a_source():
    ids = [rule.id for rule in rules.ALL_RULES]
    assert len(ids) == len(set(ids))
    assert all(rule.source.startswith(("ITI TF-", "ebRS")) for rule in rules.ALL_RULES)

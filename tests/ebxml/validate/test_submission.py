"""validate_submission: each test changes the valid fixture once and expects one finding."""

from __future__ import annotations

from dataclasses import replace

import fixtures as fx
import pytest

from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import Association, Code, ExtraClassification, Extras, ExtraSlot
from ebxml.validate import rules
from ebxml.validate.submission import validate_submission
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    SUBMISSION_SET_STATUS_REFERENCE,
    AssociationType,
    AvailabilityStatus,
    ErrorSeverity,
    Transaction,
)

REGISTRY = ErrorCode.XDSRegistryMetadataError
REPOSITORY = ErrorCode.XDSRepositoryMetadataError
NEW_ASSOC = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-0000000000f1"
OTHER_ASSOC = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-0000000000f2"
SECOND_DE_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-0000000000d2"


def register(submission, **kwargs) -> list[RegistryError]:
    return validate_submission(submission, Transaction.ITI42, default_code=REGISTRY, **kwargs)


def provide(submission, **kwargs) -> list[RegistryError]:
    return validate_submission(submission, Transaction.ITI41, default_code=REPOSITORY, **kwargs)


def only(findings: list[RegistryError], rule: rules.Rule, code: ErrorCode) -> RegistryError:
    assert len(findings) == 1, findings
    (finding,) = findings
    assert finding.code == code
    assert f"[{rule.id};" in finding.context
    return finding


def second_entry(**changes) -> tuple:
    """A second valid DocumentEntry with its SubmissionSet HasMember."""
    fields = {"unique_id": "1.3.6.1.4.1.21367.2005.3.99.1.1011", **changes}
    entry = fx.document_entry(entry_uuid=SECOND_DE_ID, **fields)
    member = fx.has_member(OTHER_ASSOC, fx.SS_ID, SECOND_DE_ID, "Original")
    return entry, member


# --- the valid fixtures ---------------------------------------------------------------


def test_valid_register_submission_has_no_findings():
    assert register(fx.register_submission()) == []


def test_valid_provide_submission_has_no_findings():
    assert provide(fx.provide_submission(), repository_unique_id=fx.REPOSITORY) == []


def test_valid_on_demand_registration_has_no_findings():
    entry = fx.document_entry(
        object_type=DOC_ENTRY_ON_DEMAND,
        hash=None,
        size=None,
        creation_time=None,
        legal_authenticator=None,
    )
    submission = fx.register_submission(document_entries=(entry,))
    assert validate_submission(submission, Transaction.ITI61, default_code=REGISTRY) == []


# --- one SubmissionSet, one patient ---------------------------------------------------


def test_submission_without_submission_set_is_refused():
    submission = fx.register_submission(submission_set=None, folders=(), associations=())
    findings = [f for f in register(submission) if rules.ONE_SUBMISSION_SET.id in f.context]
    only(findings, rules.ONE_SUBMISSION_SET, REGISTRY)


def test_doc_entry_patient_id_must_match_submission_set():
    submission = fx.with_entry(fx.register_submission(), patient_id=fx.OTHER_PATIENT)
    finding = only(
        register(submission), rules.PATIENT_ID_MATCHES, ErrorCode.XDSPatientIdDoesNotMatch
    )
    assert fx.OTHER_PATIENT in finding.context and fx.PATIENT in finding.context
    assert finding.location == "Document01"


def test_folder_patient_id_must_match_submission_set():
    submission = fx.register_submission(folders=(fx.folder(patient_id=fx.OTHER_PATIENT),))
    only(register(submission), rules.PATIENT_ID_MATCHES, ErrorCode.XDSPatientIdDoesNotMatch)


# --- uniqueness -----------------------------------------------------------------------


def test_duplicate_unique_id_in_register_is_registry_error():
    entry, member = second_entry(unique_id=fx.document_entry().unique_id)
    submission = fx.register_submission()
    submission = replace(
        fx.with_association(submission, member),
        document_entries=(*submission.document_entries, entry),
    )
    only(
        register(submission),
        rules.UNIQUE_ID_UNIQUE_REGISTRY,
        ErrorCode.XDSRegistryDuplicateUniqueIdInMessage,
    )


def test_duplicate_document_unique_id_in_provide_is_repository_error():
    entry, member = second_entry(
        unique_id=fx.document_entry().unique_id, hash=None, size=None, repository_unique_id=None
    )
    submission = fx.provide_submission()
    submission = replace(
        fx.with_association(submission, member),
        document_entries=(*submission.document_entries, entry),
    )
    only(
        provide(submission),
        rules.UNIQUE_ID_UNIQUE_REPOSITORY,
        ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage,
    )


def test_folder_sharing_submission_set_unique_id_is_registry_duplicate():
    submission = fx.register_submission(
        folders=(fx.folder(unique_id=fx.submission_set().unique_id),)
    )
    only(
        register(submission),
        rules.UNIQUE_ID_UNIQUE_REGISTRY,
        ErrorCode.XDSRegistryDuplicateUniqueIdInMessage,
    )


def test_entry_uuid_used_twice_is_refused():
    submission = fx.register_submission(folders=(fx.folder(entry_uuid=fx.DE_ID),))
    findings = [f for f in register(submission) if rules.ENTRY_UUID_UNIQUE.id in f.context]
    only(findings, rules.ENTRY_UUID_UNIQUE, REGISTRY)


# --- attributes required in ITI-42 (ITI TF-3 Table 4.3.1-3, XDS DR) --------------------


@pytest.mark.parametrize(
    "field, attribute",
    [
        ("hash", "hash"),
        ("size", "size"),
        ("repository_unique_id", "repositoryUniqueId"),
        ("mime_type", "mimeType"),
        ("class_code", "classCode"),
        ("type_code", "typeCode"),
        ("format_code", "formatCode"),
        ("healthcare_facility_type_code", "healthcareFacilityTypeCode"),
        ("practice_setting_code", "practiceSettingCode"),
        ("creation_time", "creationTime"),
        ("language_code", "languageCode"),
        ("source_patient_id", "sourcePatientId"),
        ("unique_id", "uniqueId"),
        ("patient_id", "patientId"),
    ],
)
def test_register_doc_entry_requires_attribute(field, attribute):
    submission = fx.with_entry(fx.register_submission(), **{field: None})
    finding = only(register(submission), rules.ATTRIBUTE_REQUIRED, REGISTRY)
    assert f"has no {attribute}," in finding.context


def test_register_doc_entry_requires_confidentiality_code():
    submission = fx.with_entry(fx.register_submission(), confidentiality_codes=())
    only(register(submission), rules.ATTRIBUTE_REQUIRED, REGISTRY)


@pytest.mark.parametrize(
    "field, attribute",
    [
        ("source_id", "sourceId"),
        ("submission_time", "submissionTime"),
        ("content_type_code", "contentTypeCode"),
        ("unique_id", "uniqueId"),
        ("patient_id", "patientId"),
    ],
)
def test_register_submission_set_requires_attribute(field, attribute):
    submission = fx.register_submission(submission_set=fx.submission_set(**{field: None}))
    finding = only(register(submission), rules.ATTRIBUTE_REQUIRED, REGISTRY)
    assert f"SubmissionSet SubmissionSet01 has no {attribute}," in finding.context


def test_register_folder_requires_code_list():
    submission = fx.register_submission(folders=(fx.folder(code_list=()),))
    only(register(submission), rules.ATTRIBUTE_REQUIRED, REGISTRY)


def test_provide_may_omit_hash_size_and_repository_unique_id():
    assert provide(fx.provide_submission()) == []


def test_provide_missing_class_code_uses_repository_default_code():
    submission = fx.with_entry(fx.provide_submission(), class_code=None)
    only(provide(submission), rules.ATTRIBUTE_REQUIRED, REPOSITORY)


def test_missing_r2_attribute_is_not_a_finding():
    submission = fx.with_entry(fx.register_submission(), authors=(), service_start_time=None)
    assert register(submission) == []


# --- formats --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("creation_time", "2024-02-29T10:15:00Z"),
        ("creation_time", "20240229101500+0100"),
        ("service_start_time", "20230229"),
        ("hash", "XYZ"),
        ("size_text", "12kB"),
        ("mime_type", "text"),
        ("language_code", "english!"),
        ("patient_id", "PID-1^^^NS&1.2.3&ISO"),
        ("patient_id", "PID-1^^^&1.2.3&ISO^PI"),
        ("unique_id", "1.2.03"),
        ("repository_unique_id", "repo-1"),
        ("legal_authenticator", "^^Marcus"),
        ("reference_ids", ("1.2.3",)),
        ("source_patient_info", ("Doe^John",)),
        ("entry_uuid", "Document02"),
    ],
)
def test_doc_entry_attribute_format(field, value):
    changes = {field: value}
    if field == "size_text":
        changes["size"] = None
    submission = fx.with_entry(fx.register_submission(), **changes)
    findings = [f for f in register(submission) if rules.ATTRIBUTE_FORMAT.id in f.context]
    only(findings, rules.ATTRIBUTE_FORMAT, REGISTRY)


def test_submission_time_must_be_utc_dtm():
    submission = fx.register_submission(
        submission_set=fx.submission_set(submission_time="20240301120000.123")
    )
    only(register(submission), rules.ATTRIBUTE_FORMAT, REGISTRY)


def test_folder_last_update_time_must_be_dtm():
    submission = fx.register_submission(folders=(fx.folder(last_update_time="2024013"),))
    only(register(submission), rules.ATTRIBUTE_FORMAT, REGISTRY)


def test_author_institution_must_be_xon():
    author = replace(fx.AUTHOR, institutions=("^Hospital",))
    submission = fx.with_entry(fx.register_submission(), authors=(author,))
    finding = only(register(submission), rules.ATTRIBUTE_FORMAT, REGISTRY)
    assert "authorInstitution" in finding.context


def test_code_needs_display_name():
    submission = fx.with_entry(fx.register_submission(), class_code=Code("X", "1.2.3", ""))
    finding = only(register(submission), rules.CODE_COMPLETE, REGISTRY)
    assert "classCode" in finding.context


def test_code_needs_coding_scheme():
    bad = (Code("N", "", "Normal"),)
    submission = fx.with_entry(fx.register_submission(), confidentiality_codes=bad)
    only(register(submission), rules.CODE_COMPLETE, REGISTRY)


# --- objectType, limitedMetadata, availabilityStatus, repository ----------------------


def test_on_demand_entry_refused_in_register():
    submission = fx.with_entry(fx.register_submission(), object_type=DOC_ENTRY_ON_DEMAND)
    only(register(submission), rules.OBJECT_TYPE, REGISTRY)


def test_on_demand_entry_must_not_carry_hash():
    entry = fx.document_entry(
        object_type=DOC_ENTRY_ON_DEMAND, size=None, creation_time=None, legal_authenticator=None
    )
    submission = fx.register_submission(document_entries=(entry,))
    findings = validate_submission(submission, Transaction.ITI61, default_code=REGISTRY)
    finding = only(findings, rules.ATTRIBUTE_PROHIBITED, REGISTRY)
    assert "carries hash" in finding.context


def test_limited_metadata_refused_in_register():
    submission = fx.with_entry(fx.register_submission(), limited_metadata=True)
    finding = only(register(submission), rules.ATTRIBUTE_PROHIBITED, REGISTRY)
    assert "limitedMetadata" in finding.context


def test_limited_metadata_refused_in_xds_provide():
    submission = fx.with_entry(fx.provide_submission(), limited_metadata=True)
    only(provide(submission), rules.ATTRIBUTE_PROHIBITED, REPOSITORY)


def test_limited_metadata_accepted_in_xdr_provide_without_codes():
    submission = fx.with_entry(
        fx.provide_submission(), limited_metadata=True, class_code=None, type_code=None
    )
    assert provide(submission, accept_limited_metadata=True) == []


def test_deprecated_status_on_submitted_entry_is_a_warning():
    submission = fx.with_entry(
        fx.register_submission(), availability_status=AvailabilityStatus.DEPRECATED
    )
    finding = only(register(submission), rules.AVAILABILITY_STATUS_SET_BY_REGISTRY, REGISTRY)
    assert finding.severity == ErrorSeverity.WARNING


def test_repository_unique_id_must_name_this_repository():
    submission = fx.with_entry(fx.provide_submission(), repository_unique_id="1.2.3.4")
    findings = provide(submission, repository_unique_id=fx.REPOSITORY)
    only(findings, rules.REPOSITORY_UNIQUE_ID_MATCHES, REPOSITORY)


def test_extras_never_cause_findings():
    extras = Extras(
        slots=(ExtraSlot("urn:example:custom", ("anything",)),),
        classifications=(ExtraClassification("urn:uuid:unknown-scheme", "x"),),
    )
    submission = fx.with_entry(fx.register_submission(), extras=extras)
    assert register(submission) == []


# --- HasMember (ITI TF-3 4.2.2.1) -----------------------------------------------------


def test_doc_entry_must_be_member_of_submission_set():
    submission = fx.without_association(fx.register_submission(), fx.SS_DE_ID)
    finding = only(register(submission), rules.MEMBER_OF_SUBMISSION_SET, REGISTRY)
    assert finding.location == "Document01"


def test_folder_must_be_member_of_submission_set():
    submission = fx.without_association(fx.register_submission(), fx.SS_FOLDER_ID)
    only(register(submission), rules.MEMBER_OF_SUBMISSION_SET, REGISTRY)


def test_has_member_to_new_doc_entry_must_say_original():
    submission = fx.register_submission()
    changed = tuple(
        replace(a, submission_set_status=SUBMISSION_SET_STATUS_REFERENCE)
        if a.entry_uuid == fx.SS_DE_ID
        else a
        for a in submission.associations
    )
    only(register(replace(submission, associations=changed)), rules.SUBMISSION_SET_STATUS, REGISTRY)


def test_has_member_to_doc_entry_without_status_is_refused():
    submission = fx.register_submission()
    changed = tuple(
        replace(a, submission_set_status=None) if a.entry_uuid == fx.SS_DE_ID else a
        for a in submission.associations
    )
    only(register(replace(submission, associations=changed)), rules.SUBMISSION_SET_STATUS, REGISTRY)


def test_has_member_to_existing_doc_entry_must_say_reference():
    member = fx.has_member(NEW_ASSOC, fx.SS_ID, fx.EXISTING_DE_ID, "Original")
    submission = fx.with_association(fx.register_submission(), member)
    only(register(submission), rules.SUBMISSION_SET_STATUS, REGISTRY)


def test_has_member_to_existing_doc_entry_with_reference_is_accepted():
    member = fx.has_member(NEW_ASSOC, fx.SS_ID, fx.EXISTING_DE_ID, "Reference")
    assert register(fx.with_association(fx.register_submission(), member)) == []


def test_association_to_unresolved_symbolic_id_is_refused():
    member = fx.has_member(NEW_ASSOC, fx.SS_ID, "Document99", "Original")
    submission = fx.with_association(fx.register_submission(), member)
    finding = only(register(submission), rules.REFERENCE_RESOLVES, REGISTRY)
    assert "Document99" in finding.context


def test_has_member_from_doc_entry_is_refused():
    member = fx.has_member(NEW_ASSOC, fx.DE_ID, fx.EXISTING_DE_ID)
    submission = fx.with_association(fx.register_submission(), member)
    only(register(submission), rules.HAS_MEMBER_SOURCE, REGISTRY)


def test_folder_has_member_needs_submission_set_has_member():
    submission = fx.without_association(fx.register_submission(), fx.SS_FOLDER_DE_ID)
    only(register(submission), rules.FOLDER_MEMBERSHIP_IN_SUBMISSION_SET, REGISTRY)


def test_adding_existing_doc_entry_to_existing_folder_needs_submission_set_has_member():
    existing_folder = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-0000000000fa"
    member = fx.has_member(NEW_ASSOC, existing_folder, fx.EXISTING_DE_ID)
    submission = fx.with_association(fx.register_submission(), member)
    only(register(submission), rules.FOLDER_MEMBERSHIP_IN_SUBMISSION_SET, REGISTRY)


# --- relationships (ITI TF-3 4.2.2.2) -------------------------------------------------


def relationship(kind: str, source: str, target: str, entry_uuid: str = NEW_ASSOC) -> Association:
    return Association(entry_uuid, kind, source, target)


def test_replacement_of_existing_doc_entry_is_accepted():
    rplc = relationship(AssociationType.RPLC, fx.DE_ID, fx.EXISTING_DE_ID)
    assert register(fx.with_association(fx.register_submission(), rplc)) == []


def test_relationship_source_must_be_doc_entry_of_submission():
    apnd = relationship(AssociationType.APND, fx.EXISTING_DE_ID, fx.DE_ID)
    submission = fx.with_association(fx.register_submission(), apnd)
    findings = [f for f in register(submission) if rules.RELATIONSHIP_SOURCE.id in f.context]
    only(findings, rules.RELATIONSHIP_SOURCE, REGISTRY)


def test_replacement_target_must_be_existing_doc_entry():
    entry, member = second_entry()
    submission = fx.register_submission()
    submission = replace(
        fx.with_association(
            submission, member, relationship(AssociationType.RPLC, fx.DE_ID, SECOND_DE_ID)
        ),
        document_entries=(*submission.document_entries, entry),
    )
    only(register(submission), rules.RELATIONSHIP_TARGET, REGISTRY)


def test_signature_may_sign_doc_entry_of_same_submission():
    entry, member = second_entry()
    submission = fx.register_submission()
    signs = relationship(AssociationType.SIGNS, SECOND_DE_ID, fx.DE_ID)
    submission = replace(
        fx.with_association(submission, member, signs),
        document_entries=(*submission.document_entries, entry),
    )
    assert register(submission) == []


def test_snapshot_target_must_be_existing_doc_entry():
    # ITI TF-3 4.2.2.2.7: a snapshot points at an On-Demand entry already registered
    entry, member = second_entry()
    submission = fx.register_submission()
    snapshot = relationship(AssociationType.IS_SNAPSHOT_OF, fx.DE_ID, SECOND_DE_ID)
    submission = replace(
        fx.with_association(submission, member, snapshot),
        document_entries=(*submission.document_entries, entry),
    )
    only(register(submission), rules.RELATIONSHIP_TARGET, REGISTRY)


def test_snapshot_of_existing_entry_is_valid():
    snapshot = relationship(AssociationType.IS_SNAPSHOT_OF, fx.DE_ID, fx.EXISTING_DE_ID)
    assert register(fx.with_association(fx.register_submission(), snapshot)) == []


def test_doc_entry_replaces_at_most_one_entry():
    other_existing = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-0000000000ab"
    submission = fx.with_association(
        fx.register_submission(),
        relationship(AssociationType.RPLC, fx.DE_ID, fx.EXISTING_DE_ID),
        relationship(AssociationType.XFRM_RPLC, fx.DE_ID, other_existing, OTHER_ASSOC),
    )
    finding = only(register(submission), rules.ONE_REPLACEMENT, REGISTRY)
    assert finding.location == "Document01"


def test_unknown_association_type_is_kept_not_refused():
    custom = relationship("urn:example:AssociationType:seeAlso", fx.DE_ID, fx.EXISTING_DE_ID)
    assert register(fx.with_association(fx.register_submission(), custom)) == []

"""The XDS metadata rules xdsi checks, one named constant per rule.

A ``Rule`` carries an id, the spec section it comes from, the XDS error code it raises
(``None``: the actor's default metadata error, ``XDSRegistryMetadataError`` for the
registry and ``XDSRepositoryMetadataError`` for the repository) and a message template.
``Rule.finding`` turns one violation into the ``RegistryError`` the response carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebxml.errors import ErrorCode, RegistryError
from ebxml.vocabulary import ErrorSeverity


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    source: str
    code: ErrorCode | None
    text: str  # str.format template; the fields are named by each rule
    severity: ErrorSeverity = ErrorSeverity.ERROR

    def finding(
        self, default_code: ErrorCode, location: str = "", **fields: object
    ) -> RegistryError:
        """One violation of this rule as an rs:RegistryError; codeContext is the filled
        template followed by the rule id and its source."""
        context = f"{self.text.format(**fields)} [{self.id}; {self.source}]"
        return RegistryError(self.code or default_code, context, location, self.severity)


# --- the submission as a whole (ITI TF-3 4.1.4, 4.2.1) ---------------------------------
ONE_SUBMISSION_SET = Rule(
    "submission-set-exactly-one",
    "ITI TF-3 4.1.4",
    None,
    "a submission carries exactly one SubmissionSet; {detail}",
)
ENTRY_UUID_UNIQUE = Rule(
    "entry-uuid-unique",
    "ITI TF-3 4.2.3.1.7",
    None,
    "entryUUID {entry_uuid} is used by more than one object",
)
UNIQUE_ID_UNIQUE_REGISTRY = Rule(
    "unique-id-unique-in-message",
    "ITI TF-3 Table 4.2.4.1-2; ITI TF-2 3.42.4.1.3",
    ErrorCode.XDSRegistryDuplicateUniqueIdInMessage,
    "uniqueId {unique_id} is used by {objects}",
)
UNIQUE_ID_UNIQUE_REPOSITORY = Rule(
    "document-unique-id-unique-in-message",
    "ITI TF-3 Table 4.2.4.1-2; ITI TF-2 3.41.4.1.3",
    ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage,
    "uniqueId {unique_id} is used by {objects}",
)
PATIENT_ID_MATCHES = Rule(
    "patient-id-matches-submission-set",
    "ITI TF-3 4.1.4; ITI TF-2 3.42.4.1.3",
    ErrorCode.XDSPatientIdDoesNotMatch,
    "{object} patientId {value} differs from the SubmissionSet patientId {expected}",
)

# --- attributes (ITI TF-3 4.2.3, 4.3.1) ------------------------------------------------
ATTRIBUTE_REQUIRED = Rule(
    "attribute-required",
    "ITI TF-3 Table 4.3.1-3",
    None,
    "{object} has no {attribute}, which {column} requires",
)
ATTRIBUTE_PROHIBITED = Rule(
    "attribute-prohibited",
    "ITI TF-3 Table 4.3.1-3",
    None,
    "{object} carries {attribute}, which {column} does not allow",
)
ATTRIBUTE_FORMAT = Rule(
    "attribute-format",
    "ITI TF-3 4.2.3.1.7, Table 4.2.3.1.7-2",
    None,
    "{object} {attribute} {value!r} is not a valid {format}: {reason}",
)
CODE_COMPLETE = Rule(
    "code-complete",
    "ITI TF-3 4.2.3.1.2",
    None,
    "{object} {attribute} {value!r}: {reason}",
)
OBJECT_TYPE = Rule(
    "document-entry-object-type",
    "ITI TF-3 4.2.5.2; ITI TF-2 3.42.4.1.3, 3.61.4.1.3",
    None,
    "{object} objectType {value} is not allowed in {transaction}",
)
REPOSITORY_UNIQUE_ID_MATCHES = Rule(
    "repository-unique-id-matches",
    "ITI TF-2 3.41.4.1.3",
    None,
    "{object} repositoryUniqueId {value} is not this repository ({expected})",
)
AVAILABILITY_STATUS_SET_BY_REGISTRY = Rule(
    "availability-status-set-by-registry",
    "ITI TF-3 4.2.3.2 (availabilityStatus)",
    None,
    "{object} availabilityStatus {value} is ignored: the registry sets it",
    ErrorSeverity.WARNING,
)

# --- associations (ITI TF-3 4.2.2) -----------------------------------------------------
MEMBER_OF_SUBMISSION_SET = Rule(
    "member-of-submission-set",
    "ITI TF-3 4.2.2.1",
    None,
    "{object} is not linked from the SubmissionSet by a HasMember association",
)
SUBMISSION_SET_STATUS = Rule(
    "has-member-submission-set-status",
    "ITI TF-3 4.2.2.1",
    None,
    "HasMember {association} to {target} has SubmissionSetStatus {value!r}; expected {expected}",
)
REFERENCE_RESOLVES = Rule(
    "association-reference-resolves",
    "ITI TF-3 4.2.1; ebRS 3.0 (UnresolvedReferenceException)",
    None,
    "{association} {end} {value} is neither in the submission nor a UUID",
)
HAS_MEMBER_SOURCE = Rule(
    "has-member-source",
    "ITI TF-3 4.2.2.1",
    None,
    "HasMember {association} has source {value}, which is not the SubmissionSet or a Folder",
)
FOLDER_MEMBERSHIP_IN_SUBMISSION_SET = Rule(
    "folder-has-member-in-submission-set",
    "ITI TF-3 4.2.2.1.3, 4.2.2.1.4",
    None,
    "Folder HasMember {association} is not itself a member of the SubmissionSet",
)
RELATIONSHIP_SOURCE = Rule(
    "relationship-source-in-submission",
    "ITI TF-3 4.2.2.2",
    None,
    "{association_type} {association} has source {value}, which is not a DocumentEntry of this submission",
)
RELATIONSHIP_TARGET = Rule(
    "relationship-target-existing",
    "ITI TF-3 4.2.2.2",
    None,
    "{association_type} {association} has target {value}, which must be an existing DocumentEntry",
)
ONE_REPLACEMENT = Rule(
    "one-replacing-relationship",
    "ITI TF-3 4.2.2.2",
    None,
    "{object} is the source of {count} replacing relationships ({associations}); at most one is allowed",
)

# --- Provide and Register (ITI TF-2 3.41.4.1.3) ----------------------------------------
DOCUMENT_FOR_ENTRY = Rule(
    "document-for-entry",
    "ITI TF-2 3.41.4.1.3",
    ErrorCode.XDSMissingDocument,
    "{object} has no document in the request",
)
ENTRY_FOR_DOCUMENT = Rule(
    "entry-for-document",
    "ITI TF-2 3.41.4.1.3",
    ErrorCode.XDSMissingDocumentMetadata,
    "{what} has no DocumentEntry in the metadata",
)
DOCUMENT_ONCE = Rule(
    "document-once",
    "ITI TF-2 3.41.4.1.3",
    ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage,
    "document {document} is sent {count} times",
)
HASH_MATCHES = Rule(
    "hash-matches-document",
    "ITI TF-2 3.41.4.1.3.1",
    ErrorCode.XDSRepositoryMetadataError,
    "{object} hash {value} differs from the SHA-1 of the document ({actual})",
)
SIZE_MATCHES = Rule(
    "size-matches-document",
    "ITI TF-2 3.41.4.1.3.1",
    ErrorCode.XDSRepositoryMetadataError,
    "{object} size {value} differs from the size of the document ({actual})",
)

ALL_RULES: tuple[Rule, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rule))

__all__ = [
    "ALL_RULES",
    "ATTRIBUTE_FORMAT",
    "ATTRIBUTE_PROHIBITED",
    "ATTRIBUTE_REQUIRED",
    "AVAILABILITY_STATUS_SET_BY_REGISTRY",
    "CODE_COMPLETE",
    "DOCUMENT_FOR_ENTRY",
    "DOCUMENT_ONCE",
    "ENTRY_FOR_DOCUMENT",
    "ENTRY_UUID_UNIQUE",
    "FOLDER_MEMBERSHIP_IN_SUBMISSION_SET",
    "HASH_MATCHES",
    "HAS_MEMBER_SOURCE",
    "MEMBER_OF_SUBMISSION_SET",
    "OBJECT_TYPE",
    "ONE_REPLACEMENT",
    "ONE_SUBMISSION_SET",
    "PATIENT_ID_MATCHES",
    "REFERENCE_RESOLVES",
    "RELATIONSHIP_SOURCE",
    "RELATIONSHIP_TARGET",
    "REPOSITORY_UNIQUE_ID_MATCHES",
    "Rule",
    "SIZE_MATCHES",
    "SUBMISSION_SET_STATUS",
    "UNIQUE_ID_UNIQUE_REGISTRY",
    "UNIQUE_ID_UNIQUE_REPOSITORY",
]

"""Validation of one submission (ITI-41, ITI-42, ITI-61; ITI TF-3 4.1, 4.2, 4.3;
ITI TF-2 3.42.4.1.3) against the model, before anything is stored.

Only what the message itself shows is checked here; what needs the registry's stored
state (that a referenced UUID exists, that the patient is known, that a uniqueId is new)
is checked by the registry.  Every finding is returned, none raised.  Extra slots,
classifications and external identifiers never cause a finding: the registry keeps them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property

from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import Association, Code, DocumentEntry, Folder, Submission
from ebxml.validate import rules
from ebxml.validate.cardinality import (
    ATTRIBUTES,
    KIND_OF,
    Cardinality,
    MetadataObject,
    cardinality,
    column_for,
)
from ebxml.validate.formats import FORMAT_CHECKS, Format, code_problem, is_uuid_urn
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    DOC_ENTRY_STABLE,
    DOC_ENTRY_TYPES,
    RELATIONSHIP_TYPES,
    REPLACING_TYPES,
    SUBMISSION_SET_STATUS_ORIGINAL,
    SUBMISSION_SET_STATUS_REFERENCE,
    AssociationType,
    AvailabilityStatus,
    Transaction,
)

# DocumentEntry objectTypes each transaction registers (ITI TF-2 3.42.4.1.3: stable;
# ITI TF-2 3.61.4.1.3: on-demand; ITI-57 updates either kind)
OBJECT_TYPES: dict[Transaction, frozenset[str]] = {
    Transaction.ITI41: frozenset({DOC_ENTRY_STABLE}),
    Transaction.RAD68: frozenset({DOC_ENTRY_STABLE}),
    Transaction.ITI42: frozenset({DOC_ENTRY_STABLE}),
    Transaction.ITI57: DOC_ENTRY_TYPES,
    Transaction.ITI61: frozenset({DOC_ENTRY_ON_DEMAND}),
}

# Transactions whose receiver is the Document Repository: duplicate DocumentEntry
# uniqueIds are its error (ITI TF-3 Table 4.2.4.1-2)
REPOSITORY_TRANSACTIONS = frozenset({Transaction.ITI41, Transaction.RAD68})

# Statuses a submitter may send without being told the registry ignores them
QUIET_STATUSES = frozenset({None, AvailabilityStatus.APPROVED, AvailabilityStatus.SUBMITTED})

# Relationships whose target may be a DocumentEntry of the same submission (a signature
# over a document submitted with it, ITI TF-3 4.2.2.2); the others point at existing ones
TARGET_MAY_BE_NEW = frozenset({AssociationType.SIGNS})


@dataclass(frozen=True)
class _Context:
    submission: Submission
    transaction: Transaction
    default_code: ErrorCode
    repository_unique_id: str | None
    accept_limited_metadata: bool

    @cached_property
    def sent_as(self) -> dict[str, str]:
        return {uuid: symbolic for symbolic, uuid in self.submission.symbolic_ids.items()}

    def name(self, object_id: str) -> str:
        """The id as the submitter wrote it, for locations and messages."""
        return self.sent_as.get(object_id, object_id)

    def describe(self, obj: MetadataObject) -> str:
        return f"{KIND_OF[type(obj)]} {self.name(obj.entry_uuid)}"

    @cached_property
    def submission_set_id(self) -> str | None:
        ss = self.submission.submission_set
        return None if ss is None else ss.entry_uuid

    @cached_property
    def entry_ids(self) -> frozenset[str]:
        return frozenset(d.entry_uuid for d in self.submission.document_entries)

    @cached_property
    def folder_ids(self) -> frozenset[str]:
        return frozenset(f.entry_uuid for f in self.submission.folders)

    @cached_property
    def object_ids(self) -> frozenset[str]:
        return frozenset(self.submission.object_ids())

    def is_existing(self, object_id: str) -> bool:
        """A UUID not in the submission: an object the registry must already hold."""
        return object_id not in self.object_ids and is_uuid_urn(object_id)

    @cached_property
    def has_members(self) -> tuple[Association, ...]:
        return tuple(a for a in self.submission.associations if a.is_has_member)

    @cached_property
    def submission_set_members(self) -> dict[str, Association]:
        return {a.target: a for a in self.has_members if a.source == self.submission_set_id}

    @property
    def objects(self) -> Iterator[MetadataObject]:
        if self.submission.submission_set is not None:
            yield self.submission.submission_set
        yield from self.submission.document_entries
        yield from self.submission.folders

    def error(self, rule: rules.Rule, location: str = "", **fields: object) -> RegistryError:
        return rule.finding(self.default_code, self.name(location), **fields)


Check = Callable[[_Context], Iterator[RegistryError]]


def _one_submission_set(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.1.4: a submission request holds exactly one SubmissionSet
    if ctx.submission.submission_set is None:
        yield ctx.error(rules.ONE_SUBMISSION_SET, detail="this one has none")


def _entry_uuids_unique(ctx: _Context) -> Iterator[RegistryError]:
    ids = [o.entry_uuid for o in ctx.objects]
    ids += [a.entry_uuid for a in ctx.submission.associations]
    for entry_uuid, count in Counter(ids).items():
        if count > 1:
            yield ctx.error(rules.ENTRY_UUID_UNIQUE, entry_uuid, entry_uuid=ctx.name(entry_uuid))


# a table lookup, asked once per attribute of every object
_cardinality = cache(cardinality)


def _attributes(ctx: _Context) -> Iterator[RegistryError]:
    """Cardinality (ITI TF-3 Table 4.3.1-3) and format (Table 4.2.3.1.7-2) of every
    attribute of every object."""
    for obj in ctx.objects:
        kind = KIND_OF[type(obj)]
        limited = obj.limited_metadata and ctx.accept_limited_metadata
        column = column_for(ctx.transaction, limited_metadata=limited)
        for attribute, spec in ATTRIBUTES[kind].items():
            values = spec.values(obj)
            allowed: Cardinality = _cardinality(kind, attribute, column)
            if len(values) < allowed.min:
                yield ctx.error(
                    rules.ATTRIBUTE_REQUIRED,
                    obj.entry_uuid,
                    column=f"{ctx.transaction} ({column})",
                    **_fields(ctx, obj, attribute),
                )
            elif allowed.max == 0 and values:
                yield ctx.error(
                    rules.ATTRIBUTE_PROHIBITED,
                    obj.entry_uuid,
                    column=f"{ctx.transaction} ({column})",
                    **_fields(ctx, obj, attribute),
                )
            for value in values:
                if (error := _value(ctx, obj, spec.format, value, attribute)) is not None:
                    yield error


def _fields(ctx: _Context, obj: MetadataObject, attribute: str) -> dict[str, str]:
    return {"object": ctx.describe(obj), "attribute": attribute}


def _value(
    ctx: _Context,
    obj: MetadataObject,
    fmt: Format | None,
    value: str | Code,
    attribute: str,
) -> RegistryError | None:
    """The finding about one attribute value, if any (asked for every value: the
    description of the object is made only for a finding)."""
    if isinstance(value, Code):
        if reason := code_problem(value):
            return ctx.error(
                rules.CODE_COMPLETE,
                obj.entry_uuid,
                value=value.code,
                reason=reason,
                **_fields(ctx, obj, attribute),
            )
    elif fmt is not None and (reason := FORMAT_CHECKS[fmt](value)):
        return ctx.error(
            rules.ATTRIBUTE_FORMAT,
            obj.entry_uuid,
            value=value,
            format=fmt,
            reason=reason,
            **_fields(ctx, obj, attribute),
        )
    return None


def _availability_status(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.3.2: availabilityStatus is set by the registry; a submitted one is ignored
    for obj in ctx.objects:
        if obj.availability_status not in QUIET_STATUSES:
            yield ctx.error(
                rules.AVAILABILITY_STATUS_SET_BY_REGISTRY,
                obj.entry_uuid,
                object=ctx.describe(obj),
                value=obj.availability_status,
            )


def _object_types(ctx: _Context) -> Iterator[RegistryError]:
    allowed = OBJECT_TYPES.get(ctx.transaction, DOC_ENTRY_TYPES)
    for entry in ctx.submission.document_entries:
        if entry.object_type not in allowed:
            yield ctx.error(
                rules.OBJECT_TYPE,
                entry.entry_uuid,
                object=ctx.describe(entry),
                value=entry.object_type,
                transaction=ctx.transaction,
            )


def _patient_ids(ctx: _Context) -> Iterator[RegistryError]:
    ss = ctx.submission.submission_set
    if ss is None or ss.patient_id is None:
        return
    members: tuple[DocumentEntry | Folder, ...] = (
        *ctx.submission.document_entries,
        *ctx.submission.folders,
    )
    for obj in members:
        if obj.patient_id is not None and obj.patient_id != ss.patient_id:
            yield ctx.error(
                rules.PATIENT_ID_MATCHES,
                obj.entry_uuid,
                object=ctx.describe(obj),
                value=obj.patient_id,
                expected=ss.patient_id,
            )


def _unique_ids(ctx: _Context) -> Iterator[RegistryError]:
    holders: dict[str, list[MetadataObject]] = defaultdict(list)
    for obj in ctx.objects:
        if obj.unique_id is not None:
            holders[obj.unique_id].append(obj)
    for unique_id, objs in holders.items():
        if len(objs) < 2:
            continue
        entries_only = all(isinstance(o, DocumentEntry) for o in objs)
        rule = (
            rules.UNIQUE_ID_UNIQUE_REPOSITORY
            if entries_only and ctx.transaction in REPOSITORY_TRANSACTIONS
            else rules.UNIQUE_ID_UNIQUE_REGISTRY
        )
        objects = ", ".join(ctx.describe(o) for o in objs)
        yield ctx.error(rule, objs[1].entry_uuid, unique_id=unique_id, objects=objects)


def _members_of_submission_set(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.2.1: every DocumentEntry and Folder submitted is a member of the SubmissionSet
    if ctx.submission_set_id is None:
        return
    members: tuple[DocumentEntry | Folder, ...] = (
        *ctx.submission.document_entries,
        *ctx.submission.folders,
    )
    for obj in members:
        if obj.entry_uuid not in ctx.submission_set_members:
            yield ctx.error(
                rules.MEMBER_OF_SUBMISSION_SET, obj.entry_uuid, object=ctx.describe(obj)
            )


def _submission_set_status(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.2.1: SubmissionSet -> DocumentEntry HasMember says "Original" for an entry
    # of this submission and "Reference" for an entry already in the registry
    for target, association in ctx.submission_set_members.items():
        if target in ctx.entry_ids:
            expected = SUBMISSION_SET_STATUS_ORIGINAL
        elif ctx.is_existing(target):
            expected = SUBMISSION_SET_STATUS_REFERENCE
        else:
            continue
        if association.submission_set_status != expected:
            yield ctx.error(
                rules.SUBMISSION_SET_STATUS,
                association.entry_uuid,
                association=ctx.name(association.entry_uuid),
                target=ctx.name(target),
                value=association.submission_set_status,
                expected=expected,
            )


def _references(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.1: an association end is an object of the submission or a UUID
    for association in ctx.submission.associations:
        for end, value in (
            ("sourceObject", association.source),
            ("targetObject", association.target),
        ):
            if value not in ctx.object_ids and not is_uuid_urn(value):
                yield ctx.error(
                    rules.REFERENCE_RESOLVES,
                    association.entry_uuid,
                    association=ctx.name(association.entry_uuid),
                    end=end,
                    value=value,
                )


def _has_member_sources(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.2.1: HasMember goes from the SubmissionSet or from a Folder
    wrong_sources = ctx.entry_ids | {a.entry_uuid for a in ctx.submission.associations}
    for association in ctx.has_members:
        if association.source in wrong_sources:
            yield ctx.error(
                rules.HAS_MEMBER_SOURCE,
                association.entry_uuid,
                association=ctx.name(association.entry_uuid),
                value=ctx.name(association.source),
            )


def _folder_memberships(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.2.1.3-4: a Folder -> DocumentEntry HasMember is itself a member of the
    # SubmissionSet
    if ctx.submission_set_id is None:
        return
    for association in ctx.has_members:
        from_folder = association.source in ctx.folder_ids or (
            association.source != ctx.submission_set_id and ctx.is_existing(association.source)
        )
        to_entry = association.target in ctx.entry_ids or ctx.is_existing(association.target)
        if from_folder and to_entry and association.entry_uuid not in ctx.submission_set_members:
            yield ctx.error(
                rules.FOLDER_MEMBERSHIP_IN_SUBMISSION_SET,
                association.entry_uuid,
                association=ctx.name(association.entry_uuid),
            )


def _relationships(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-3 4.2.2.2: a relationship goes from a new DocumentEntry to an existing one
    replacing: dict[str, list[str]] = defaultdict(list)
    for association in ctx.submission.associations:
        kind = association.association_type
        if kind not in RELATIONSHIP_TYPES:
            continue
        fields = {
            "association": ctx.name(association.entry_uuid),
            "association_type": kind.rsplit(":", 1)[-1],
        }
        if association.source not in ctx.entry_ids:
            yield ctx.error(
                rules.RELATIONSHIP_SOURCE,
                association.entry_uuid,
                value=ctx.name(association.source),
                **fields,
            )
        if kind not in TARGET_MAY_BE_NEW and association.target in ctx.object_ids:
            yield ctx.error(
                rules.RELATIONSHIP_TARGET,
                association.entry_uuid,
                value=ctx.name(association.target),
                **fields,
            )
        if kind in REPLACING_TYPES:
            replacing[association.source].append(ctx.name(association.entry_uuid))
    for source, associations in replacing.items():
        if len(associations) > 1:
            yield ctx.error(
                rules.ONE_REPLACEMENT,
                source,
                object=f"DocumentEntry {ctx.name(source)}",
                count=len(associations),
                associations=", ".join(associations),
            )


def _repository_unique_id(ctx: _Context) -> Iterator[RegistryError]:
    # ITI TF-2 3.41.4.1.3: the repository names itself; another repository's id is wrong
    expected = ctx.repository_unique_id
    if expected is None:
        return
    for entry in ctx.submission.document_entries:
        if entry.repository_unique_id not in (None, expected):
            yield ctx.error(
                rules.REPOSITORY_UNIQUE_ID_MATCHES,
                entry.entry_uuid,
                object=ctx.describe(entry),
                value=entry.repository_unique_id,
                expected=expected,
            )


CHECKS: tuple[Check, ...] = (
    _one_submission_set,
    _entry_uuids_unique,
    _attributes,
    _availability_status,
    _object_types,
    _patient_ids,
    _unique_ids,
    _members_of_submission_set,
    _submission_set_status,
    _references,
    _has_member_sources,
    _folder_memberships,
    _relationships,
    _repository_unique_id,
)


def validate_submission(
    submission: Submission,
    transaction: Transaction,
    *,
    default_code: ErrorCode,
    repository_unique_id: str | None = None,
    accept_limited_metadata: bool = False,
) -> list[RegistryError]:
    """Every finding about ``submission`` as received in ``transaction``.

    ``default_code`` is the receiving actor's metadata error (``XDSRegistryMetadataError``
    or ``XDSRepositoryMetadataError``).  ``repository_unique_id``: the receiving
    repository's own id; an entry naming another one is refused.
    ``accept_limited_metadata``: the receiver takes XDR metadata-limited objects (ITI-41
    in XDR); otherwise limitedMetadata is refused like any prohibited attribute.
    """
    ctx = _Context(
        submission, transaction, default_code, repository_unique_id, accept_limited_metadata
    )
    return [finding for check in CHECKS for finding in check(ctx)]


__all__ = [
    "CHECKS",
    "OBJECT_TYPES",
    "REPOSITORY_TRANSACTIONS",
    "validate_submission",
]

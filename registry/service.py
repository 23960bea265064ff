"""The Document Registry as a transport-independent API.

``DocumentRegistry(engine, config)`` registers submissions (ITI-42: validate, then
check and store in one unit of work) and hands out sessions for the stored queries
and the Patient Identity Feed.  Changes are published as ``RegistryEvent`` values
to in-process subscribers (the composition root wires DSUB or audit to them); a
subscriber's failure never fails the transaction that caused the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import Submission
from ebxml.vocabulary import Transaction
from registry.codes import CodeSet, check_codes
from registry.db import session_factory, single_statement_connections
from registry.register import Registered, register_submission
from registry.uow import DEFAULT_ATTEMPTS, transact
from registry.update import Updated, update_document_set

log = logging.getLogger(__name__)

T = TypeVar("T")

Validator = Callable[[Submission, Transaction], list[RegistryError]]


class RegistryEventKind(StrEnum):
    SUBMITTED = "submitted"  # a submission set and its objects were stored
    DEPRECATED = "deprecated"  # DocumentEntries became Deprecated (RPLC, XFRM_RPLC)
    REMOVED = "removed"  # registry objects were removed (ITI-62 Remove Metadata)
    STATUS_CHANGED = "status_changed"  # availabilityStatus set by ITI-57 Update Document Set


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    kind: RegistryEventKind
    entry_uuids: tuple[str, ...]
    patient_id: str | None


Subscriber = Callable[[RegistryEvent], None]


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Registry settings; the defaults suit a single node."""

    retry_attempts: int = DEFAULT_ATTEMPTS
    # The affinity domain's code set (``registry.codes.load_code_set``); None: codes are
    # not checked against value sets (ITI TF-3 4.2.3.1.2)
    code_set: CodeSet | None = None


def standard_validator(code_set: CodeSet | None = None) -> Validator:
    """``ebxml.validate.validate_submission`` with the registry's default error code,
    and the affinity domain's code set when one is configured."""
    from ebxml.validate import validate_submission

    def validate(submission: Submission, transaction: Transaction) -> list[RegistryError]:
        findings = validate_submission(
            submission, transaction, default_code=ErrorCode.XDSRegistryMetadataError
        )
        if code_set is not None:
            findings.extend(check_codes(submission, code_set))
        return findings

    return validate


class DocumentRegistry:
    """The registry actor: one instance per process, sharing the database with others."""

    def __init__(
        self,
        engine: Engine,
        config: RegistryConfig | None = None,
        *,
        validator: Validator | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or RegistryConfig()
        self._validate = validator or standard_validator(self.config.code_set)
        self.sessions: sessionmaker[Session] = session_factory(engine)
        # ITI-18: each stored query is one statement (registry.stored_query)
        self.query_connections: Callable[[], Connection] = single_statement_connections(engine)
        self.write_sessions: sessionmaker[Session] = session_factory(engine, write=True)
        self._subscribers: list[Subscriber] = []

    # --- events ----------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, event: RegistryEvent) -> None:
        """Hand ``event`` to every subscriber (for transactions run outside this class,
        e.g. ITI-62 in ``registry.soap_remove``)."""
        self._publish(event)

    def _publish(self, event: RegistryEvent) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a subscriber never fails the registry
                log.exception("registry event subscriber failed on %s", event.kind)

    # --- transactions ----------------------------------------------------------------

    def transact(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one write transaction, committed if it returns (the patient
        feed uses this); retried from the start when it lost a race."""
        return transact(
            self.write_sessions, lambda s: (work(s), True), attempts=self.config.retry_attempts
        )

    def register(
        self, submission: Submission, *, transaction: Transaction = Transaction.ITI42
    ) -> RegistryResponse:
        """ITI-42 Register Document Set-b (also the registry side of ITI-41)."""
        findings = self._validate(submission, transaction)
        if any(f.is_error for f in findings):
            return RegistryResponse.from_errors(findings)
        try:
            outcome = transact(
                self.write_sessions,
                lambda s: _register_work(s, submission, transaction),
                attempts=self.config.retry_attempts,
            )
        except SQLAlchemyError:
            log.exception("registering submission set failed")
            return RegistryResponse.from_errors(
                [
                    RegistryError(
                        ErrorCode.XDSRegistryError, "the registry could not store the submission"
                    )
                ]
            )
        if outcome.response.ok:
            self._announce(outcome)
        return RegistryResponse.from_errors([*findings, *outcome.response.errors])

    def update(self, submission: Submission) -> RegistryResponse:
        """ITI-57 Update Document Set (XDS Metadata Update option, ITI TF-2 3.57): new
        versions of DocumentEntries and Folders and availabilityStatus changes, all or
        nothing.  Also the way for an in-process actor to deprecate a document (see
        ``registry.update.availability_update``)."""
        findings = self._validate(submission, Transaction.ITI57)
        if any(f.is_error for f in findings):
            return RegistryResponse.from_errors(findings)
        try:
            outcome = transact(
                self.write_sessions,
                lambda s: _update_work(s, submission),
                attempts=self.config.retry_attempts,
            )
        except SQLAlchemyError:
            log.exception("updating the document set failed")
            return RegistryResponse.from_errors(
                [
                    RegistryError(
                        ErrorCode.XDSRegistryError, "the registry could not store the update"
                    )
                ]
            )
        if outcome.response.ok:
            self._announce_update(outcome)
        return RegistryResponse.from_errors([*findings, *outcome.response.errors])

    def _announce_update(self, outcome: Updated) -> None:
        patient = outcome.patient_id
        if outcome.stored:
            self._publish(RegistryEvent(RegistryEventKind.SUBMITTED, outcome.stored, patient))
        if outcome.deprecated:
            self._publish(RegistryEvent(RegistryEventKind.DEPRECATED, outcome.deprecated, patient))
        if outcome.status_changed:
            self._publish(
                RegistryEvent(RegistryEventKind.STATUS_CHANGED, outcome.status_changed, patient)
            )

    def _announce(self, outcome: Registered) -> None:
        self._publish(
            RegistryEvent(RegistryEventKind.SUBMITTED, outcome.stored, outcome.patient_id)
        )
        if outcome.deprecated:
            self._publish(
                RegistryEvent(RegistryEventKind.DEPRECATED, outcome.deprecated, outcome.patient_id)
            )


def _register_work(
    session: Session, submission: Submission, transaction: Transaction
) -> tuple[Registered, bool]:
    outcome = register_submission(session, submission, transaction=transaction)
    return outcome, outcome.response.ok


def _update_work(session: Session, submission: Submission) -> tuple[Updated, bool]:
    outcome = update_document_set(session, submission)
    return outcome, outcome.response.ok


__all__ = [
    "DocumentRegistry",
    "RegistryConfig",
    "RegistryEvent",
    "RegistryEventKind",
    "Subscriber",
    "Validator",
    "standard_validator",
]

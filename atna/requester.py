"""The requester's side: what xdsi's client commands audit as the actor that asks.

``xdsi query`` is a Document Consumer (ITI-18, ITI TF-2 3.18.5.1.1: Query 110112),
``xdsi retrieve`` a Document Consumer (ITI-43, 3.43.6.1.1: Import 110107), ``xdsi
submit`` a Document Source (ITI-41, 3.41.5.1.1: Export 110106), ``xdsi publish`` an
Imaging Document Source (RAD-68, audited as the ITI-41 Document Source, and the ITI-18
its manifest lookup asks), ``xdsi patients add`` a Patient Identity Source (ITI-8,
3.8.5.1.1: Patient Record 110110).  ``atna.events.TRANSACTION_AUDITS`` holds the
rows; this module names the participants as those sections ask:

- this process: UserID the WS-Addressing ReplyTo it sent (anonymous: xdsi asks for
  the synchronous reply), AlternativeUserID its process id (added by the message
  builder), NetworkAccessPointID the local address it reached the peer from;
- the peer: its endpoint URL (the SOAP endpoint URI), its host as access point;
- the human requestor, when known: the OS user who ran the command (ITI TF-2 3.20.7).

The outcome: the response status (``atna.observe.STATUS_OUTCOME``), a SOAP fault as
the server would audit it (``FAULT_OUTCOME``), no answer at all 12 (major failure:
the service was not available).
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from atna.codes import EventOutcomeIndicator
from atna.events import MAX_DESCRIPTION, AuditEvent, Endpoint, Side, TransactionOutcome
from atna.observe import FAULT_OUTCOME, STATUS_OUTCOME
from atna.observe import _query_patients as query_patients
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, RegistryResponse
from ebxml.model import Submission
from ebxml.vocabulary import Transaction
from ebxml.wire import adhoc_query_request
from soap.faults import SoapFault
from soap.namespaces import WSA_ANONYMOUS

log = logging.getLogger(__name__)

Record = Callable[[AuditEvent], None]
Query = Callable[[AdhocQueryRequest], AdhocQueryResponse]
_O = EventOutcomeIndicator


def operator() -> str | None:
    """The OS user running this process: the human requestor of a command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@lru_cache(maxsize=64)
def local_address(host: str | None, port: int | None = None) -> str:
    """The local address this node reaches ``host`` from (a UDP connect sends nothing),
    or this node's name when it cannot be told."""
    if host:
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                               socket.SOCK_DGRAM) as probe:  # fmt: skip
                probe.connect((host, port or 9))
                return str(probe.getsockname()[0])
        except OSError:
            pass
    return socket.getfqdn()


def _host_port(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    try:
        return parts.hostname, parts.port
    except ValueError:
        return parts.hostname, None


def soap_requester(peer_url: str) -> Endpoint:
    """This process as the requester of a SOAP transaction to ``peer_url``."""
    return Endpoint(WSA_ANONYMOUS, network_access_point=local_address(*_host_port(peer_url)))


def status_outcome(status: str) -> EventOutcomeIndicator:
    return STATUS_OUTCOME.get(status, _O.SERIOUS_FAILURE)


def error_outcome(error: BaseException) -> tuple[EventOutcomeIndicator, str]:
    """A SOAP fault as the responder audits it; any other error: 12, no service."""
    if isinstance(error, SoapFault):
        return FAULT_OUTCOME.get(error.code, _O.SERIOUS_FAILURE), (error.reason or "")[
            :MAX_DESCRIPTION
        ]
    return _O.MAJOR_FAILURE, (str(error) or type(error).__name__)[:MAX_DESCRIPTION]


def describe_errors(response: RegistryResponse) -> str | None:
    text = "; ".join(
        f"{e.code}: {e.context}" if e.context else str(e.code) for e in response.errors
    )
    return text[:MAX_DESCRIPTION] or None


def requester_outcome(
    transaction: Transaction,
    peer_url: str,
    outcome: EventOutcomeIndicator,
    description: str | None = None,
    *,
    requester: Endpoint | None = None,
    responder: Endpoint | None = None,
    **facts: Any,
) -> TransactionOutcome:
    """The requester's record of one transaction with ``peer_url``; ``facts`` are the
    ``TransactionOutcome`` fields of the participant objects."""
    return TransactionOutcome(
        transaction=transaction,
        side=Side.REQUESTER,
        requester=requester or soap_requester(peer_url),
        responder=responder or Endpoint(peer_url),
        outcome=outcome,
        outcome_description=description,
        human_requestor=operator(),
        **facts,
    )


def submission_facts(submission: Submission) -> dict[str, Any]:
    """ITI TF-2 3.41.5.1.1: the patient and the submission set."""
    ss = submission.submission_set
    patients = [ss.patient_id] if ss is not None and ss.patient_id else []
    patients += [e.patient_id for e in submission.document_entries if e.patient_id]
    return {
        "patient_ids": tuple(dict.fromkeys(patients)),
        "submission_set_unique_id": ss.unique_id if ss is not None else None,
    }


def query_facts(request: AdhocQueryRequest, patient_ids: tuple[str, ...]) -> dict[str, Any]:
    """ITI TF-2 3.18.5.1.1: the patient, the stored query and the request as sent."""
    return {
        "patient_ids": patient_ids,
        "query_id": request.query_id,
        "query_request": etree.tostring(adhoc_query_request(request)),
        "home_community_id": request.home,
    }


def _record(record: Record, event: TransactionOutcome) -> None:
    try:
        record(event)
    except Exception:  # auditing never fails the command it records
        log.exception("audit record of %s not made", event.transaction)


# --- the decorators ``xdsi publish`` uses ------------------------------------------------
class AuditingRepositoryClient:
    """A ``DocumentRepositoryClient`` auditing each RAD-68 as the Imaging Document Source
    (RAD TF-3 4.68: the ITI-41 Document Source's audit, ITI TF-2 3.41.5.1.1)."""

    def __init__(self, inner: Any, record: Record, url: str) -> None:
        self.inner = inner
        self._record = record
        self._url = url

    def provide_and_register(self, request: Any) -> RegistryResponse:
        facts = submission_facts(request.submission)
        try:
            response: RegistryResponse = self.inner.provide_and_register(request)
        except Exception as exc:
            outcome, text = error_outcome(exc)
            _record(
                self._record,
                requester_outcome(Transaction.RAD68, self._url, outcome, text, **facts),
            )
            raise
        event = requester_outcome(
            Transaction.RAD68,
            self._url,
            status_outcome(response.status),
            describe_errors(response),
            **facts,
        )
        _record(self._record, event)
        return response


def auditing_query(query: Query, record: Record, url: str) -> Query:
    """``query`` (ITI-18 to the registry at ``url``) audited as the Document Consumer."""

    def audited(request: AdhocQueryRequest) -> AdhocQueryResponse:
        facts = query_facts(request, query_patients(request.parameters))
        try:
            response = query(request)
        except Exception as exc:
            outcome, text = error_outcome(exc.__cause__ or exc)
            _record(record, requester_outcome(Transaction.ITI18, url, outcome, text, **facts))
            raise
        text = "; ".join(str(e.code) for e in response.errors)[:MAX_DESCRIPTION] or None
        event = requester_outcome(
            Transaction.ITI18, url, status_outcome(response.status), text, **facts
        )
        _record(record, event)
        return response

    return audited


__all__ = [
    "AuditingRepositoryClient",
    "auditing_query",
    "describe_errors",
    "error_outcome",
    "local_address",
    "operator",
    "query_facts",
    "requester_outcome",
    "soap_requester",
    "status_outcome",
    "submission_facts",
]

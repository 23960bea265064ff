"""DICOM DIMSE services of the Imaging Document Source, on pynetdicom.

The protocol machine is pynetdicom's; xdsi binds one handler per event at start-up:
C-ECHO (PS3.4 A), C-STORE SCP for every storage SOP class (PS3.4 B), and the Study Root
Query/Retrieve SCP (PS3.4 C.6.2): C-FIND at STUDY/SERIES/IMAGE level, C-MOVE to
configured destinations (IHE RAD-14/RAD-16) and C-GET.  Queries and retrieves are
answered through an ``InstanceSource`` (:meth:`DimseServer.serve_from`): the local
store by default, or a backing PACS - matched there, fetched into the cache before the
C-STORE sub-operations - so a caller sees the PACS's studies transparently.  The
sub-operations send each instance as stored (:mod:`imaging_source.sub_operations`),
those of a C-MOVE over a sub-association of xdsi's own, without Nagle's delay
(:mod:`imaging_source.sub_association`); the optional Pending responses in between are
paced (:mod:`imaging_source.pending`).

A handler's exception becomes a failure status in one place, :func:`failure_status`,
through :func:`guarded` (plain handlers) and :func:`guarded_each` (handlers that yield):
the association carries on and the server keeps serving.
"""

from __future__ import annotations

import io
import logging
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, build_context, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from imaging_source.config import ImagingSourceConfig
from imaging_source.exchange import (
    DicomExchange,
    DicomOperation,
    ExchangeStatus,
    OnExchange,
    notify,
    touched,
)
from imaging_source.instances import (
    InstanceMismatch,
    InstanceStore,
    InvalidInstance,
    QueryLevel,
    StoredInstance,
)
from imaging_source.pacs import InstanceRef, InstanceSource, LocalSource
from imaging_source.peers import PeerDirectory
from imaging_source.pending import pace_pending
from imaging_source.sub_association import MoveSourceAE
from imaging_source.sub_operations import StoredFile, send_as_stored
from imaging_source.tcp import NO_DELAY_HANDLERS

log = logging.getLogger(__name__)

# PS3.7 C: status values
SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
# PS3.4 B.2.3 (C-STORE) and C.4.1.1.4 / C.4.2.1.5 / C.4.3.1.4 (C-FIND/MOVE/GET)
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000  # C-STORE "Cannot understand"; Q/R "Unable to process"
PROCESSING_FAILURE = 0x0110  # PS3.7 C.4.2, C-ECHO
# PS3.5 6.1.2.3: the index holds Unicode; answers are sent as UTF-8
UTF8_CHARACTER_SET = "ISO_IR 192"

# Transfer syntaxes accepted for C-STORE: the uncompressed ones and the common
# compressed ones (PS3.5 A.4), all stored as received.
TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
_UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class IdentifierError(ValueError):
    """A C-FIND/C-MOVE/C-GET Identifier the Study Root model cannot answer."""


# The one place exceptions become statuses: the first class in an exception's MRO found
# here decides (PS3.4 B.2.3, C.4.1.1.4).
FAILURE_STATUS: dict[type[BaseException], int] = {
    InstanceMismatch: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,  # A900 "does not match SOP Class"
    InvalidInstance: CANNOT_UNDERSTAND,
    IdentifierError: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    OSError: OUT_OF_RESOURCES,
    Exception: CANNOT_UNDERSTAND,
}
# What a yielding handler owes pynetdicom before its (status, dataset) pairs: C-GET the
# number of sub-operations, C-MOVE the destination and then that number.  When the
# handler fails before, one sub-operation is announced so the failure status is sent.
_PRELUDE: dict[Any, int] = {evt.EVT_C_FIND: 0, evt.EVT_C_GET: 1, evt.EVT_C_MOVE: 2}


def failure_status(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in FAILURE_STATUS:
            return FAILURE_STATUS[cls]
    return CANNOT_UNDERSTAND


def guarded(handler: Callable[[evt.Event], int]) -> Callable[[evt.Event], int]:
    def run(event: evt.Event) -> int:
        try:
            return handler(event)
        except Exception as exc:
            status = failure_status(exc)
            log.warning("%s failed with 0x%04X: %s", event.event.name, status, exc)
            return status

    return run


def guarded_each(
    handler: Callable[[evt.Event], Iterator[Any]], event_type: Any
) -> Callable[[evt.Event], Iterator[Any]]:
    prelude = _PRELUDE[event_type]

    def run(event: evt.Event) -> Iterator[Any]:
        produced = 0
        try:
            for item in handler(event):
                produced += 1
                yield item
        except Exception as exc:
            status = failure_status(exc)
            log.warning("%s failed with 0x%04X: %s", event.event.name, status, exc)
            if produced < prelude:
                yield 1  # the number of sub-operations (the destination is always first)
            yield status, None

    return run


# --- identifiers ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Query:
    level: QueryLevel
    keys: dict[str, str]


def read_identifier(identifier: Dataset) -> Query:
    """Level and matching keys of a Study Root Identifier (PS3.4 C.4.1.1.3.1)."""
    level = str(identifier.get("QueryRetrieveLevel", "")).strip()
    if level not in QueryLevel.__members__:
        raise IdentifierError(f"Query/Retrieve Level not of the Study Root model: {level!r}")
    keys: dict[str, str] = {}
    for element in identifier:
        if not element.keyword or element.VR == "SQ" or element.keyword == "QueryRetrieveLevel":
            continue
        value = element.value
        if value is None:
            keys[element.keyword] = ""
        elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            keys[element.keyword] = "\\".join(str(v) for v in value)
        else:
            keys[element.keyword] = str(value).strip()
    return Query(QueryLevel(level), keys)


_LEVEL_KEYS = {
    QueryLevel.STUDY: ("StudyInstanceUID",),
    QueryLevel.SERIES: ("StudyInstanceUID", "SeriesInstanceUID"),
    QueryLevel.IMAGE: ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}


def find_response(
    identifier: Dataset, level: QueryLevel, match: dict[str, Any], ae_title: str
) -> Dataset:
    """A pending C-FIND response Identifier: each requested key with the matched value
    (PS3.4 C.4.1.1.3.2), the unique keys of the level and above, the Retrieve AE Title."""
    response = Dataset()
    response.SpecificCharacterSet = UTF8_CHARACTER_SET
    response.QueryRetrieveLevel = level.value
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            continue
        if element.VR == "SQ":
            setattr(response, keyword, [])
            continue
        value = match.get(keyword)
        setattr(response, keyword, None if value in (None, "") else value)
    for keyword in _LEVEL_KEYS[level]:
        setattr(response, keyword, match[keyword])
    response.RetrieveAETitle = ae_title
    return response


def sub_operation_contexts(instances: list[StoredInstance]) -> list[PresentationContext]:
    """Presentation contexts for C-STORE sub-operations: per SOP class and stored transfer
    syntax, that one first so that the instances can go as stored (uncompressed data may
    also go the other uncompressed way)."""
    pairs = sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in instances})
    contexts = []
    for sop_class, syntax in pairs[:128]:  # PS3.8 9.3.2.2: at most 128 contexts
        others = [other for other in _UNCOMPRESSED if other != syntax]
        syntaxes = [syntax, *others] if syntax in _UNCOMPRESSED else [syntax]
        contexts.append(build_context(sop_class, syntaxes))
    return contexts


def _find_facts(event: evt.Event) -> dict[str, Any]:
    """C-FIND: the Identifier as received, its SOP Class, its patient and study keys."""
    request = event.request
    encoded = request.Identifier.getvalue() if request.Identifier is not None else b""
    facts: dict[str, Any] = {
        "query": encoded,
        "query_sop_class_uid": str(request.AffectedSOPClassUID or "") or None,
        "query_transfer_syntax": str(event.context.transfer_syntax or "") or None,
    }
    try:
        identifier = event.identifier
    except Exception:
        return facts
    patient = str(identifier.get("PatientID", "") or "").strip()
    studies = str(identifier.get("StudyInstanceUID", "") or "").strip()
    facts["patient_id"] = patient or None
    facts["study_instance_uids"] = tuple(u for u in studies.split("\\") if u)
    return facts


def peer_certificate_subject(assoc: Any) -> str | None:
    """The subject (RFC 4514) of the certificate the peer authenticated with, when the
    association runs over TLS (PS3.15 B.1 / ITI-19: the certificate is required)."""
    try:
        sock = assoc.dul.socket.socket
    except AttributeError:
        return None
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        der = sock.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    except (OSError, ValueError):
        log.warning("DICOM peer certificate not readable", exc_info=True)
        return None


# --- the server -------------------------------------------------------------------------
class DimseServer:
    """The AE listening on the configured DICOM port, handlers bound at start()."""

    def __init__(
        self,
        store: InstanceStore,
        config: ImagingSourceConfig,
        on_stored: Callable[[StoredInstance], None] = lambda _instance: None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_event: OnExchange | None = None,
    ) -> None:
        """``on_event``: called with a :class:`DicomExchange` as each C-STORE, C-FIND,
        C-MOVE and C-GET ends (auditing observes through it)."""
        self.store = store
        self.on_event = on_event
        self.ssl_context = ssl_context  # ITI-19: DICOM over TLS (PS3.15 B.1)
        self.config = config
        self.peers: PeerDirectory = config.peer_directory()
        self._on_stored = on_stored
        self.source: InstanceSource = LocalSource(store)
        self._server: Any = None

    def serve_from(self, source: InstanceSource) -> None:
        """Answer C-FIND, C-MOVE and C-GET through ``source`` (e.g. a backing PACS)."""
        self.source = source

    # -- lifecycle
    def build_ae(self) -> AE:
        ae = MoveSourceAE(ae_title=self.config.ae_title)
        ae.acse_timeout = self.config.acse_timeout
        ae.dimse_timeout = self.config.dimse_timeout
        ae.network_timeout = self.config.network_timeout
        ae.maximum_associations = 32
        ae.require_called_aet = True
        callers = self.peers.allowed_callers()
        if callers is not None:
            ae.require_calling_aet = callers
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            # scp_role/scu_role: accept SCP/SCU Role Selection for C-GET (PS3.7 D.3.3.4)
            ae.add_supported_context(
                context.abstract_syntax, list(TRANSFER_SYNTAXES), scu_role=True, scp_role=True
            )
        for model in (
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelMove,
            StudyRootQueryRetrieveInformationModelGet,
        ):
            ae.add_supported_context(model)
        return ae

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        """Event -> handler, each wrapped so that its exceptions become statuses."""
        plain = {evt.EVT_C_ECHO: self.on_echo, evt.EVT_C_STORE: self.on_store}
        yielding = {
            evt.EVT_C_FIND: self.on_find,
            evt.EVT_C_MOVE: self.on_move,
            evt.EVT_C_GET: self.on_get,
        }
        return [
            *NO_DELAY_HANDLERS,
            *((event, guarded(handler)) for event, handler in plain.items()),
            *((event, guarded_each(handler, event)) for event, handler in yielding.items()),
        ]

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = self.build_ae().start_server(
            (self.config.dicom_host, self.config.dicom_port),
            block=False,
            evt_handlers=self.handlers(),
            ssl_context=self.ssl_context,
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    @property
    def port(self) -> int:
        """The port actually listened on (the configured one, or the one given for 0)."""
        if self._server is None:
            raise RuntimeError("the DIMSE server is not started")
        return int(self._server.server_address[1])

    # -- handlers
    def on_echo(self, event: evt.Event) -> int:
        return SUCCESS  # PS3.4 A.4

    def on_store(self, event: evt.Event) -> int:
        try:  # pynetdicom wrote the data set to a file (STORE_RECV_CHUNKED_DATASET)
            source: Any = event.dataset_path
        except AttributeError:
            source = None
        if source is None:
            source = io.BytesIO(event.encoded_dataset(include_meta=True))
        # PS3.7 9.1.1.1: the request names the SOP Class and Instance it stores; a data
        # set that is another is refused (PS3.4 B.2.3 A900), as is an incomplete one
        expected = (
            str(event.request.AffectedSOPClassUID or ""),
            str(event.request.AffectedSOPInstanceUID or ""),
        )
        try:
            instance = self.store.add(source, expected=expected)
        except Exception as exc:
            self._report(event, DicomOperation.C_STORE, failure=exc)
            raise
        self._on_stored(instance)
        self._report(event, DicomOperation.C_STORE, instances=(instance,))
        return SUCCESS

    def on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        try:
            yield from self._find(event)
        except Exception as exc:
            self._report(event, DicomOperation.C_FIND, failure=exc)
            raise
        self._report(event, DicomOperation.C_FIND)

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        query = read_identifier(identifier)
        for match in self.source.find(query.level, query.keys):
            if event.is_cancelled:  # PS3.4 C.4.1.2.3: C-CANCEL ends the matching
                yield CANCEL, None
                return
            yield PENDING, find_response(identifier, query.level, match, self.config.ae_title)

    def _retrieve_plan(self, event: evt.Event) -> list[StoredInstance]:
        query = read_identifier(event.identifier)
        keys: dict[str, str | None] = {**query.keys}
        for keyword in _LEVEL_KEYS[QueryLevel.IMAGE]:
            keys.setdefault(keyword, "")  # return keys, so each match names its instance
        # PS3.4 C.4.2.1.4: the unique keys select; other keys are matched leniently
        refs = [
            InstanceRef(m["StudyInstanceUID"], m["SeriesInstanceUID"], m["SOPInstanceUID"])
            for m in self.source.find(QueryLevel.IMAGE, keys)
            if m.get("SOPInstanceUID")
        ]
        if len(refs) > 65535:  # PS3.7 9.1.3: sub-operation counters are US
            raise OSError("more than 65535 instances match")
        found = self.source.locate(refs)  # a backing PACS delivers into the cache here
        return [found[r.sop_instance_uid] for r in refs if r.sop_instance_uid in found]

    def _sub_operations(
        self, event: evt.Event, instances: list[StoredInstance]
    ) -> Iterator[tuple[int, Dataset | None]]:
        for instance in instances:
            if event.is_cancelled:
                yield CANCEL, None
                return
            # the file located by the retrieve plan, sent as stored (sub_operations)
            yield PENDING, StoredFile(instance)

    def on_move(self, event: evt.Event) -> Iterator[Any]:
        destination = self.peers.destination(event.move_destination or "")
        if destination is None:  # PS3.4 C.4.2.1.5: A801 Move Destination unknown
            yield None, None
            return
        # pynetdicom opens the sub-association after the number of sub-operations is
        # yielded, so the contexts are filled in between
        contexts: list[PresentationContext] = []
        options: dict[str, Any] = {
            "contexts": contexts,
            "sub_association": True,  # MoveSourceAE: xdsi's own Storage SCU
            # PS3.7 9.1.1.1: the AE that invoked the C-MOVE, not xdsi
            "move_originator": str(event.assoc.requestor.ae_title).strip(),
        }
        if destination.tls:  # ITI-19, PS3.15 B.1
            options["tls_args"] = (self.config.tls_for(destination), destination.host)
        yield destination.host, destination.port, options
        try:
            instances = self._retrieve_plan(event)
        except Exception as exc:
            self._report(event, DicomOperation.C_MOVE, failure=exc)
            raise
        contexts.extend(sub_operation_contexts(instances) or [build_context(Verification)])
        pace_pending(event.assoc)
        yield len(instances)
        yield from self._sub_operations(event, instances)
        self._report(event, DicomOperation.C_MOVE, instances=instances)

    def on_get(self, event: evt.Event) -> Iterator[Any]:
        try:
            instances = self._retrieve_plan(event)
        except Exception as exc:
            self._report(event, DicomOperation.C_GET, failure=exc)
            raise
        send_as_stored(event.assoc)  # the C-STOREs go back over this association
        pace_pending(event.assoc)
        yield len(instances)
        yield from self._sub_operations(event, instances)
        self._report(event, DicomOperation.C_GET, instances=instances)

    # -- observing
    def _report(
        self,
        event: evt.Event,
        operation: DicomOperation,
        *,
        instances: Iterable[StoredInstance] = (),
        failure: BaseException | None = None,
    ) -> None:
        """Hand the ``on_event`` observer the record of a finished operation.  The
        C-STORE sub-operations of C-MOVE/C-GET are pynetdicom's: the record names what
        was offered to the destination."""
        notify(self.on_event, lambda: self._exchange(event, operation, instances, failure))

    def _exchange(
        self,
        event: evt.Event,
        operation: DicomOperation,
        instances: Iterable[StoredInstance],
        failure: BaseException | None,
    ) -> DicomExchange:
        requestor, acceptor = event.assoc.requestor, event.assoc.acceptor
        extra: dict[str, Any] = {}
        if operation is DicomOperation.C_FIND:
            extra = _find_facts(event)
        if operation is DicomOperation.C_MOVE:
            extra["move_destination"] = str(event.move_destination or "").strip() or None
        return DicomExchange(
            operation=operation,
            peer=str(requestor.ae_title).strip(),
            peer_address=requestor.address or None,
            local=str(acceptor.ae_title).strip() or self.config.ae_title,
            outcome=ExchangeStatus.SUCCESS if failure is None else ExchangeStatus.FAILURE,
            status=SUCCESS if failure is None else failure_status(failure),
            description=None if failure is None else str(failure)[:1024] or type(failure).__name__,
            instances=tuple(touched(i) for i in instances),
            peer_subject=peer_certificate_subject(event.assoc),
            **extra,
        )


__all__ = [
    "CANCEL",
    "CANNOT_UNDERSTAND",
    "FAILURE_STATUS",
    "DimseServer",
    "IdentifierError",
    "PENDING",
    "SUCCESS",
    "TRANSFER_SYNTAXES",
    "failure_status",
    "find_response",
    "guarded",
    "guarded_each",
    "read_identifier",
    "sub_operation_contexts",
]

"""Starlette routes for SOAP services: read, dispatch on (endpoint, wsa:Action), answer.

Every exception met while answering a request becomes a SOAP fault in one place,
``_fault_for``; an unexpected one is logged with its traceback and answered with a
generic env:Receiver fault (SOAP 1.2 Part 1 5.4.6), never with the traceback.

Each endpoint answers at most ``Limits.max_concurrent_requests`` requests at once; the
next is refused before its body is read, with the Service's busy body (an application
answer, HTTP 200) or, when the Service has none, HTTP 503 with Retry-After.

An optional ``on_exchange`` observer sees every POSTed exchange once its answer is
known - answered, faulted or refused - with the request (None when it never got that
far), the response body or the fault, and an :class:`ExchangeInfo`.  It must not
block; whatever it raises is logged and swallowed, so it can never change an answer.
An answer is observed on the worker thread that encoded it (faults and refusals on the
event loop); when the observer returns an awaitable (auditing: "the record is
durable"), the answer is sent once that completes.  An observer that has a
``begin(request, info)`` method is also told when a request has been read, before it
is handled; what ``begin`` returns comes back as the observation's fifth argument
(auditing writes its record meanwhile).

An optional ``admit`` callable is asked before each request is read; False refuses it
like an endpoint at its concurrency bound (the busy answer), e.g. while the audit
spool is full.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from lxml import etree
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from soap.addressing import (
    action_not_supported,
    message_id_of,
    read_addressing,
    response_headers,
    understands,
)
from soap.envelope import (
    build_envelope,
    check_must_understand,
    envelope_bytes,
    not_understood_blocks,
    read_envelope,
    soap11_fault_envelope,
    upgrade_block,
)
from soap.faults import FaultCode, SoapFault, sender_fault
from soap.limits import Limits
from soap.message import Attachment, Operation, Service, SoapRequest, SoapResponse
from soap.mtom import (
    MessageReader,
    MessageThread,
    OutgoingMessage,
    ReadMessage,
    SpoolFull,
    discard_attachments,
    mtom_message,
    new_boundary,
    read_message_then,
    simple_message,
    soap11_message,
)
from soap.mtom_response import MessageResponse
from soap.mtom_stream import StreamedMessage, StreamedMessageResponse, streamed_mtom_message
from soap.splice import spliced_bytes

logger = logging.getLogger(__name__)

_ACTION_PARAMETER = re.compile(r'(?:^|;)\s*action\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)

_GENERIC_REASON = "the server could not process the message"
BUSY_RETRY_AFTER_SECONDS = 1


T = TypeVar("T")

# exchanges at work in their threads at once (a blocking handler, an answer's encoding):
# as many as anyio's worker threads used to be
WORKING_THREADS = 40
_WORKING = threading.BoundedSemaphore(WORKING_THREADS)


def _working(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` once fewer than WORKING_THREADS exchanges are at work."""
    with _WORKING:
        return function(*args)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """What is known of a request when its answer is built."""

    message_id: str | None = None
    operation: Operation | None = None
    mtom: bool = False


@dataclass(slots=True)
class _Answering:
    """What is known of an exchange so far, for its answer or its fault."""

    received: datetime
    reader: MessageReader | None = None
    exchange: _Exchange = field(default_factory=_Exchange)
    attachments: list[Attachment] = field(default_factory=list)
    action: str | None = None
    soap_request: SoapRequest | None = None
    info: ExchangeInfo | None = None
    begun: object = None


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """The transport facts of one POSTed exchange, for an ``on_exchange`` observer."""

    endpoint: str  # the route path, e.g. "/xds/registry"
    url: str  # the request URL without its query, as the client addressed it
    received: datetime  # when the request arrived (UTC)
    http_status: int
    action: str | None = None  # wsa:Action, once read
    client_host: str | None = None
    client_port: int | None = None


ExchangeObserver = Callable[
    [SoapRequest | None, etree._Element | None, SoapFault | None, ExchangeInfo], object
]


class SoapEndpoint:
    """One Service at its path: POST is a SOAP message, ``GET ?wsdl`` its WSDL."""

    def __init__(
        self,
        service: Service,
        limits: Limits,
        *,
        accept_unvalidated_wsse_security: bool = True,
        on_exchange: ExchangeObserver | None = None,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        self.service = service
        self.admit = admit
        self.limits = limits
        self.accept_unvalidated_wsse_security = accept_unvalidated_wsse_security
        self.on_exchange = on_exchange
        self.binary_elements = frozenset().union(
            *(op.binary_elements for op in service.operations.values())
        )
        self._active = 0  # requests being answered; one event loop, so no lock
        _intern_fault_names()

    @property
    def active(self) -> int:
        return self._active

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            return self._wsdl(request)
        return await self._post(request)

    def _wsdl(self, request: Request) -> Response:
        if "wsdl" not in request.query_params:
            return PlainTextResponse("use POST for SOAP, GET ?wsdl for the WSDL", 405)
        if self.service.wsdl is None:
            return PlainTextResponse("no WSDL for this endpoint", 404)
        return Response(self.service.wsdl, media_type="text/xml")

    async def _post(self, request: Request) -> Response:
        bound = self.limits.max_concurrent_requests
        if (bound and self._active >= bound) or (self.admit is not None and not self.admit()):
            return self._busy(request, datetime.now(UTC))
        self._active += 1
        try:
            return await self._answer(request)
        finally:
            self._active -= 1

    def _busy(self, request: Request, received: datetime) -> Response:
        """Refuse at once, unread: the busy body of the Action named in the Content-Type
        (SOAP 1.2 RFC 3902 ``action`` parameter), else 503 for the load balancer."""
        action = content_type_action(request.headers.get("content-type", ""))
        operation = self.service.operations.get(action or "")
        if self.service.busy is None or operation is None:
            info = self._info(request, received, 503, action)
            self._observe(None, None, SoapFault(FaultCode.RECEIVER, "busy", http_status=503), info)
            return PlainTextResponse(
                "busy", 503, headers={"retry-after": str(BUSY_RETRY_AFTER_SECONDS)}
            )
        body = self.service.busy(operation.action)
        outgoing = _encode_response(SoapResponse(body), operation, None)
        self._observe(None, body, None, self._info(request, received, 200, action))
        return _respond(outgoing, 200, None)

    async def _answer(self, request: Request) -> Response:
        # the exchange's own thread: the request parsed there, a blocking handler and the
        # encoding of the answer run there (``soap.mtom.MessageThread``: lxml's name
        # dictionaries are not shared between threads at work)
        thread = MessageThread()
        try:
            return await self._answer_on(request, thread)
        finally:
            thread.close()

    async def _answer_on(self, request: Request, thread: MessageThread) -> Response:
        state = _Answering(received=datetime.now(UTC))
        try:
            self._check_declared_length(request)
            state.reader = MessageReader(
                request.headers.get("content-type", ""),
                self.limits,
                binary_elements=self.binary_elements,
            )
            state.exchange = _Exchange(mtom=state.reader.mtom)
            # read, dispatched and - a blocking operation - answered on the exchange's
            # thread, in one hand-off
            handled = await read_message_then(
                state.reader,
                _timed(request.stream(), self.limits.read_timeout),
                lambda message: self._dispatch(request, message, state),
                thread,
            )
            if handled is None:  # an async handler, here on the event loop
                assert state.soap_request is not None and state.info is not None
                operation = state.exchange.operation
                assert operation is not None
                response = await operation.handler(state.soap_request)  # type: ignore[misc]
                handled = await thread.run(
                    _working,
                    self._encode_observed,
                    response,
                    operation,
                    state.soap_request,
                    state.info,
                    state.begun,
                )
            outgoing, observed = handled
        except Exception as exc:
            if state.reader is not None:
                state.reader.discard()
            discard_attachments(state.attachments)
            if isinstance(exc, SpoolFull) and (answer := self._out_of_resources(request)):
                return answer
            fault = _fault_for(exc)
            exchange = state.exchange
            mtom = exchange.operation.mtom if exchange.operation else exchange.mtom
            outgoing = _encode_fault(fault, exchange.message_id, mtom=mtom)
            info = self._info(request, state.received, fault.http_status, state.action)
            await _settled(self._observe(state.soap_request, None, fault, info, state.begun))
            return _respond(outgoing, fault.http_status, None)
        await _settled(observed)
        # spooled parts are deleted once the answer is sent; without any, no task (a
        # sync background task costs a worker-thread hand-off per exchange)
        attachments = state.attachments
        cleanup = BackgroundTask(discard_attachments, attachments) if attachments else None
        return _respond(outgoing, 200, cleanup)

    def _dispatch(
        self, request: Request, message: ReadMessage, state: _Answering
    ) -> tuple[OutgoingMessage | StreamedMessage, object] | None:
        """On the exchange's thread, the message just read: its envelope checked, its
        Action's operation found, the observer told; a blocking operation answered
        (the answer and what the observer handed back), an async one left to the event
        loop (None).  ``state`` keeps what is known for a fault."""
        state.attachments = list(message.attachments.values())
        envelope = read_envelope(message.envelope)
        state.exchange = _Exchange(message_id_of(envelope.header), None, message.mtom)
        check_must_understand(
            envelope.header,
            understands,
            accept_unvalidated_wsse_security=self.accept_unvalidated_wsse_security,
            on_accepted_unvalidated=_log_unvalidated,
        )
        addressing = read_addressing(envelope.header)
        state.action = addressing.action
        operation = self.service.operations.get(addressing.action)
        if operation is None:
            raise action_not_supported(addressing.action)
        state.exchange = _Exchange(addressing.message_id, operation, message.mtom)
        client = request.client
        state.soap_request = SoapRequest(
            endpoint=self.service.path,
            addressing=addressing,
            body=envelope.body,
            attachments=message.attachments,
            header=envelope.header,
            mtom=message.mtom,
            client_host=client.host if client else None,
            client_port=client.port if client else None,
        )
        state.info = self._info(request, state.received, 200, state.action)
        state.begun = self._begin(state.soap_request, state.info)
        if not operation.blocking:
            return None
        return _working(
            self._handle_blocking, operation, state.soap_request, state.info, state.begun
        )

    def _out_of_resources(self, request: Request) -> Response | None:
        """The Service's answer to a request whose parts found no room in the spool,
        for the Action named in the Content-Type (the envelope is not read yet)."""
        action = content_type_action(request.headers.get("content-type", ""))
        operation = self.service.operations.get(action or "")
        if self.service.out_of_resources is None or operation is None:
            return None
        logger.warning("no room in the spool directory for a %s request", operation.action)
        body = self.service.out_of_resources(operation.action)
        outgoing = _encode_response(SoapResponse(body), operation, None)
        self._observe(None, body, None, self._info(request, datetime.now(UTC), 200, action))
        return _respond(outgoing, 200, None)

    def _handle_blocking(
        self, operation: Operation, request: SoapRequest, info: ExchangeInfo, begun: object
    ) -> tuple[OutgoingMessage | StreamedMessage, object]:
        """A blocking handler's exchange, all in this worker thread."""
        response = operation.handler(request)
        return self._encode_observed(response, operation, request, info, begun)  # type: ignore[arg-type]

    def _encode_observed(
        self,
        response: SoapResponse,
        operation: Operation,
        request: SoapRequest,
        info: ExchangeInfo,
        begun: object = None,
    ) -> tuple[OutgoingMessage | StreamedMessage, object]:
        """Encode the answer, then let the observer see the exchange - on the worker
        thread, where auditing makes its record durable without another thread hop.  A
        streamed answer is observed once its last part is sent (``soap.mtom_stream``):
        only then is its outcome known."""
        outgoing = _encode_response(response, operation, request.addressing.message_id)
        if isinstance(outgoing, StreamedMessage):

            def finished(failure: BaseException | None) -> object:
                if failure is None:
                    return self._observe(request, response.body, None, info, begun)
                cut_short = SoapFault(FaultCode.RECEIVER, f"the answer was cut short: {failure}")
                return self._observe(request, None, cut_short, info, begun)

            return replace(outgoing, finished=finished), None
        return outgoing, self._observe(request, response.body, None, info, begun)

    def _begin(self, request: SoapRequest, info: ExchangeInfo) -> object:
        """Tell an observer with ``begin`` that the exchange's request is read; what it
        returns is handed back with the exchange's observation."""
        begin = getattr(self.on_exchange, "begin", None)
        if begin is None:
            return None
        try:
            return begin(request, info)
        except Exception:
            logger.exception("exchange observer failed for %s %s", info.endpoint, info.action)
            return None

    def _info(
        self, request: Request, received: datetime, status: int, action: str | None
    ) -> ExchangeInfo:
        client = request.client
        return ExchangeInfo(
            endpoint=self.service.path,
            url=_endpoint_url(request),
            received=received,
            http_status=status,
            action=action,
            client_host=client.host if client else None,
            client_port=client.port if client else None,
        )

    def _observe(
        self,
        request: SoapRequest | None,
        body: etree._Element | None,
        fault: SoapFault | None,
        info: ExchangeInfo,
        begun: object = None,
    ) -> object:
        if self.on_exchange is None:
            return None
        try:
            if begun is not None:
                return self.on_exchange(request, body, fault, info, begun)  # type: ignore[call-arg]
            return self.on_exchange(request, body, fault, info)
        except Exception:
            # an observer (auditing) never changes the answer
            logger.exception("exchange observer failed for %s %s", info.endpoint, info.action)
            return None

    def _check_declared_length(self, request: Request) -> None:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_request_bytes:
            raise sender_fault(
                f"message exceeds {self.limits.max_request_bytes} bytes", http_status=413
            )


_ENDPOINT_URLS: dict[tuple[object, ...], str] = {}
_ENDPOINT_URLS_KEPT = 256  # distinct (scheme, server, path, Host) remembered at most


def _endpoint_url(request: Request) -> str:
    """The URL the request was sent to, without query or fragment (the audit's
    responder), as Starlette reads it from the scope: remembered per scope parts, since
    building it costs more than the rest of an exchange's bookkeeping."""
    scope = request.scope
    host = next((value for key, value in scope["headers"] if key == b"host"), None)
    key = (scope.get("scheme"), scope.get("server"), scope.get("root_path"), scope["path"], host)
    url = _ENDPOINT_URLS.get(key)
    if url is None:
        url = str(request.url.replace(query="", fragment=""))
        if len(_ENDPOINT_URLS) >= _ENDPOINT_URLS_KEPT:
            _ENDPOINT_URLS.clear()  # Host is the client's to choose: keep the memory bounded
        _ENDPOINT_URLS[key] = url
    return url


async def _settled(observed: object) -> None:
    """Wait for what the observer handed back, if it is awaitable; never raises."""
    if inspect.isawaitable(observed):
        try:
            await observed
        except Exception:
            logger.exception("exchange observer failed while the answer waited")


async def _timed(stream: AsyncIterator[bytes], timeout: float) -> AsyncIterator[bytes]:
    """``stream``'s chunks, each to arrive within ``timeout`` seconds of asking for it
    (else a 408 Sender fault).  One deadline for the whole body, armed only while a
    chunk is awaited: a deadline scope per chunk cost a tenth of the event loop's time
    under concurrent small requests."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as deadline:
            while True:
                deadline.reschedule(loop.time() + timeout)
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
                if deadline.expired():
                    # the deadline passed as the chunk came: take its cancellation here,
                    # inside the scope, rather than at the reader's next await
                    await asyncio.sleep(0)
                deadline.reschedule(None)  # not while the reader works on the chunk
                if chunk:
                    yield chunk
    except TimeoutError:
        raise sender_fault("timed out reading the request body", http_status=408) from None


def content_type_action(content_type: str) -> str | None:
    """The ``action`` parameter of a SOAP 1.2 (RFC 3902) or MTOM Content-Type."""
    match = _ACTION_PARAMETER.search(content_type)
    if match is None:
        return None
    value = match.group(1) if match.group(1) is not None else match.group(2)
    return value.strip('\\"')  # some clients quote it inside start-info


def _log_unvalidated(block: etree._Element) -> None:
    logger.warning("accepted %s header without validating it", etree.QName(block).text)


def _fault_for(exc: Exception) -> SoapFault:
    """The one place where an exception becomes the fault sent back."""
    if isinstance(exc, SoapFault):
        return exc
    if isinstance(exc, ClientDisconnect):
        return sender_fault("the client disconnected before the message was read")
    if isinstance(exc, SpoolFull):
        # the server's resources, not the message: env:Receiver (SOAP 1.2 Part 1 5.4.6)
        logger.warning("no room in the spool directory: %s", exc.strerror or exc)
        return SoapFault(FaultCode.RECEIVER, "no room to spool the message, try again later")
    logger.error("unexpected error while answering a SOAP request", exc_info=exc)
    return SoapFault(FaultCode.RECEIVER, _GENERIC_REASON)


def _encode_response(
    response: SoapResponse, operation: Operation, relates_to: str | None
) -> OutgoingMessage | StreamedMessage:
    root = build_envelope(response.body, response_headers(operation.response_action, relates_to))
    if response.splices:
        data = spliced_bytes(root, response.splices, envelope_bytes)
    else:
        data = envelope_bytes(root)
    # ITI TF-2 V.3: MTOM operations answer MTOM even without a binary part
    if operation.mtom and response.streamed is not None:
        boundary = new_boundary()
        message = mtom_message(data, response.attachments, boundary=boundary)
        return streamed_mtom_message(message, boundary, response.streamed)
    if operation.mtom:
        return mtom_message(data, response.attachments)
    if response.attachments or response.streamed is not None:
        raise ValueError(f"{operation.action} is not an MTOM operation but returned attachments")
    return simple_message(data)


def _intern_fault_names() -> None:
    """Encode each kind of fault once, where the endpoint is made (before serving): the
    faults the event loop encodes then add no name to the main thread's libxml2
    dictionary, the parent every other thread's dictionary reads while it works
    (``soap.mtom.MessageThread``)."""
    understood = (etree.QName("urn:xdsi:intern", "header"),)
    for fault in (
        SoapFault(FaultCode.SENDER, "-", subcode=etree.QName("urn:xdsi:intern", "subcode")),
        SoapFault(FaultCode.MUST_UNDERSTAND, "-", not_understood=understood),
        SoapFault(FaultCode.VERSION_MISMATCH, "-"),
        SoapFault(FaultCode.RECEIVER, "-", soap11=True),
    ):
        for mtom in (False, True):
            _encode_fault(fault, "urn:uuid:00000000-0000-4000-8000-000000000000", mtom=mtom)


def _encode_fault(fault: SoapFault, relates_to: str | None, *, mtom: bool) -> OutgoingMessage:
    if fault.soap11:
        # SOAP 1.2 Part 1 Appendix A: in the SOAP/1.1 form, over the SOAP 1.1 binding
        return soap11_message(envelope_bytes(soap11_fault_envelope(fault)))
    headers = response_headers(fault.action, relates_to)
    headers.extend(not_understood_blocks(fault.not_understood))
    if fault.code is FaultCode.VERSION_MISMATCH:
        headers.append(upgrade_block())  # SOAP 1.2 Part 1 5.4.7
    data = envelope_bytes(build_envelope(fault.to_element(), headers))
    return mtom_message(data) if mtom else simple_message(data)


def _respond(
    message: OutgoingMessage | StreamedMessage, status: int, background: BackgroundTask | None
) -> Response:
    if isinstance(message, StreamedMessage):
        return StreamedMessageResponse(message, status, background=background)
    return MessageResponse(message, status, background=background)


def build_soap_endpoints(
    services: Sequence[Service],
    limits: Limits,
    *,
    accept_unvalidated_wsse_security: bool = True,
    on_exchange: ExchangeObserver | None = None,
    admit: Callable[[], bool] | None = None,
) -> list[SoapEndpoint]:
    """One endpoint per Service; ``on_exchange`` observes every exchange (see the
    module docstring)."""
    return [
        SoapEndpoint(
            service,
            limits,
            accept_unvalidated_wsse_security=accept_unvalidated_wsse_security,
            on_exchange=on_exchange,
            admit=admit,
        )
        for service in services
    ]


def soap_routes(endpoints: Sequence[SoapEndpoint]) -> list[Route]:
    """One route per endpoint at its Service's path (POST: SOAP; GET ?wsdl: WSDL)."""
    return [
        Route(endpoint.service.path, endpoint.handle, methods=["GET", "POST"])
        for endpoint in endpoints
    ]


def build_soap_routes(services: Sequence[Service], limits: Limits, **options: Any) -> list[Route]:
    """:func:`soap_routes` of :func:`build_soap_endpoints` (``options`` are its
    keywords), to mount in an app."""
    return soap_routes(build_soap_endpoints(services, limits, **options))


class SoapDispatch:
    """ASGI app: a POST to a SOAP endpoint's path goes to the endpoint straight away,
    everything else (a WSDL, other routes, lifespan) to ``app``.

    Starlette's middleware stack, router and request-response wrapper (each of the
    answer's ASGI messages passes three wrappers) add nothing there: an endpoint
    answers every exception with a fault itself (``_fault_for``).  Going around them,
    with the answer's body ended by its last bytes (``soap.mtom_response``), saved
    0.03-0.13 ms of CPU an exchange on the machine of bench/RESULTS.md, 1-4% of an
    ITI-18 with an empty answer.  The path is matched as Starlette's router matches it
    (without the ``root_path``)."""

    def __init__(self, endpoints: Sequence[SoapEndpoint], app: ASGIApp) -> None:
        self.endpoints = {endpoint.service.path: endpoint for endpoint in endpoints}
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.endpoints.get(_route_path(scope))
            if endpoint is not None:
                response = await endpoint.handle(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The request's path below the application's ``root_path``, as Starlette's router
    reads it."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


__all__ = [
    "BUSY_RETRY_AFTER_SECONDS",
    "ExchangeInfo",
    "ExchangeObserver",
    "SoapDispatch",
    "SoapEndpoint",
    "build_soap_endpoints",
    "build_soap_routes",
    "content_type_action",
    "soap_routes",
]

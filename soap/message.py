"""What soap/ hands to a handler and takes back.  Knows no XDS.

A handler is ``async def handler(request: SoapRequest) -> SoapResponse``.  Request
attachments are spooled temp files (hashed while spooled) that live until the response
has been sent; a handler that wants to keep one moves it away (``Attachment.path``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from soap.splice import XmlSplice


@dataclass(frozen=True, slots=True)
class Attachment:
    """One MIME part of an MTOM/XOP package, spooled to disk."""

    content_id: str  # without angle brackets, URL-decoded
    content_type: str
    path: Path
    size: int
    sha1: str  # hex, lower case


@dataclass(frozen=True, slots=True)
class Addressing:
    """WS-Addressing 1.0 message information headers of a request."""

    action: str
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None
    relates_to: str | None = None  # set on replies (read by the client)


@dataclass(frozen=True, slots=True)
class SoapRequest:
    endpoint: str  # the route path, e.g. "/xds/repository"
    addressing: Addressing
    body: etree._Element  # the first child of env:Body, XOP includes left in place
    attachments: Mapping[str, Attachment] = field(default_factory=dict)
    header: etree._Element | None = None
    mtom: bool = False
    client_host: str | None = None
    client_port: int | None = None


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    """A part to send after the root part; its bytes stream from ``path``, or from
    ``file`` when the producer of a streamed part has opened it already (off the event
    loop, with others of its batch); the sender closes that file, sent or not."""

    content_id: str  # referenced from the body as href="cid:<content_id>"
    content_type: str
    path: Path
    size: int
    file: BinaryIO | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class SoapResponse:
    body: etree._Element
    attachments: Sequence[OutgoingAttachment] = ()
    # pre-serialised fragments written into ``body`` on the wire (``soap.splice``)
    splices: Sequence[XmlSplice] = ()
    # MTOM parts sent after ``attachments``, each as it is yielded; the message then goes
    # chunked and is cut short if the iterator raises (``soap.mtom_stream``)
    streamed: AsyncIterator[OutgoingAttachment] | None = None


Handler = Callable[[SoapRequest], Awaitable[SoapResponse]]
# a handler that blocks (database, disk): run in a worker thread (``Operation.blocking``)
BlockingHandler = Callable[[SoapRequest], SoapResponse]


@dataclass(frozen=True, slots=True)
class Operation:
    """One (endpoint, Action) of a service: its handler and wire encoding.

    ``mtom``: request and response are MTOM/XOP packages (ITI-41, ITI-43, RAD-69);
    otherwise simple SOAP both ways (ITI-18, ITI-42) - ITI TF-2 V.3.
    ``binary_elements``: element names (Clark notation) whose inline base64 text is
    decoded, streaming and capped, to a spooled attachment and replaced by an xop:Include
    before the handler sees the body (ITI TF-2 V.8.2: inline base64 inside MTOM).
    ``blocking``: ``handler`` is a plain function that blocks; the endpoint runs it,
    encodes its answer and lets the observer see the exchange in one worker thread,
    rather than a thread for the handler's work and another for the encoding.
    """

    action: str
    response_action: str
    handler: Handler | BlockingHandler
    mtom: bool = False
    binary_elements: frozenset[str] = frozenset()
    blocking: bool = False


BusyBody = Callable[[str], etree._Element]


@dataclass(frozen=True, slots=True)
class Service:
    """An endpoint: its path, operations keyed by request Action, and its WSDL text.

    ``busy`` makes the body answering a request (named by its Action) refused because
    the endpoint already handles ``Limits.max_concurrent_requests``; without it such a
    request gets HTTP 503, the load balancer's signal.  ``out_of_resources`` makes the
    body answering a request whose parts found no room in the spool directory; without
    it (or when the Action is not known) such a request gets an env:Receiver fault.
    """

    path: str
    operations: Mapping[str, Operation]
    wsdl: str | None = None
    busy: BusyBody | None = None
    out_of_resources: BusyBody | None = None


__all__ = [
    "Addressing",
    "Attachment",
    "BusyBody",
    "BlockingHandler",
    "Handler",
    "Operation",
    "OutgoingAttachment",
    "Service",
    "SoapRequest",
    "SoapResponse",
]

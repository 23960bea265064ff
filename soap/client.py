"""A SOAP 1.2 client with the same framing as the server side (httpx).

Requests carry WS-Addressing headers (Action with mustUnderstand, MessageID, To, ReplyTo
anonymous) and stream their attachments from disk; responses are read by the same
``MessageReader`` as requests, their parts spooled to disk and hashed.  A fault on the
wire is raised as ``SoapFault``.  The caller owns the response attachments' files.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
from lxml import etree

from soap.addressing import new_message_id, read_addressing, request_headers
from soap.envelope import FAULT, build_envelope, envelope_bytes, read_envelope
from soap.faults import FaultCode, SoapFault
from soap.limits import Limits
from soap.message import Addressing, Attachment, OutgoingAttachment
from soap.mtom import (
    MessageReader,
    OutgoingMessage,
    ReadMessage,
    mtom_message,
    read_message,
    simple_message,
)

# Seconds a kept-alive connection may stay idle before ``call_sync`` drops it: shorter
# than the servers' own idle timeouts (uvicorn's, xdsi's included, is 5 s), so that a
# request is not sent on a connection the server is closing at that moment
KEEPALIVE_EXPIRY = 2.0


@dataclass(frozen=True, slots=True)
class ClientResponse:
    body: etree._Element  # the first child of env:Body
    attachments: Mapping[str, Attachment]  # spooled files, owned by the caller
    addressing: Addressing
    http_status: int
    header: etree._Element | None = None


def _ssl_context(
    verify: ssl.SSLContext | bool | str, cert: tuple[str, str] | None
) -> ssl.SSLContext | bool:
    """ITI TF-2 3.19 (mutual TLS): a context with our certificate, if one is given."""
    if cert is None or verify is False:
        return verify if not isinstance(verify, str) else ssl.create_default_context(cafile=verify)
    if isinstance(verify, ssl.SSLContext):
        context = verify
    else:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    context.load_cert_chain(*cert)
    return context


class SoapClient:
    """Calls one SOAP endpoint; ``transport`` may be ``httpx.ASGITransport`` in tests.

    ``call`` is for event loops.  ``call_sync`` is for threads (a worker, the command
    line): it keeps its connections alive between calls, one pool per client shared by
    the threads that use it, so a repository registering with a remote registry opens
    one connection, and does one TLS handshake, per concurrent submission rather than
    per submission; ``close`` ends them.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 300.0,
        verify: ssl.SSLContext | bool | str = True,
        cert: tuple[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.transport = transport
        self.limits = limits or Limits()
        self._verify = _ssl_context(verify, cert)
        self._blocking: httpx.Client | None = None
        self._blocking_guard = threading.Lock()

    def _blocking_client(self) -> httpx.Client:
        with self._blocking_guard:
            if self._blocking is None:
                self._blocking = httpx.Client(
                    timeout=self.timeout,
                    verify=self._verify,
                    limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
                )
            return self._blocking

    def close(self) -> None:
        """Close the connections ``call_sync`` kept alive."""
        with self._blocking_guard:
            client, self._blocking = self._blocking, None
        if client is not None:
            client.close()

    async def call(
        self,
        action: str,
        body: etree._Element,
        *,
        attachments: Sequence[OutgoingAttachment] = (),
        mtom: bool,
    ) -> ClientResponse:
        outgoing = self._request(action, body, attachments, mtom)
        async with (
            httpx.AsyncClient(
                transport=self.transport, timeout=self.timeout, verify=self._verify
            ) as client,
            client.stream(
                "POST", self.url, content=outgoing.aiter_bytes(), headers=_headers(outgoing)
            ) as response,
        ):
            return await self._read(response)

    def call_sync(
        self,
        action: str,
        body: etree._Element,
        *,
        attachments: Sequence[OutgoingAttachment] = (),
        mtom: bool,
    ) -> ClientResponse:
        """``call`` for threads, not from a running loop: over this client's kept-alive
        connections, the response read and parsed on the calling thread."""
        if self.transport is not None:  # an ASGI application in tests: async only
            return asyncio.run(self.call(action, body, attachments=attachments, mtom=mtom))
        outgoing = self._request(action, body, attachments, mtom)
        with self._blocking_client().stream(
            "POST", self.url, content=outgoing.iter_bytes(), headers=_headers(outgoing)
        ) as response:
            reader = self._reader(response)
            try:
                for chunk in response.iter_bytes():
                    reader.feed(chunk)
                message = reader.finish()
            except BaseException:
                reader.discard()
                raise
            return self._response(response, reader, message)

    def _request(
        self,
        action: str,
        body: etree._Element,
        attachments: Sequence[OutgoingAttachment],
        mtom: bool,
    ) -> OutgoingMessage:
        """``body`` in an envelope with its WS-Addressing headers, as it will be sent."""
        envelope = build_envelope(body, request_headers(action, self.url, new_message_id()))
        return _encode(envelope_bytes(envelope), attachments, mtom=mtom)

    def _reader(self, response: httpx.Response) -> MessageReader:
        try:
            return MessageReader(response.headers.get("content-type", ""), self.limits)
        except SoapFault:
            raise SoapFault(
                FaultCode.RECEIVER,
                f"HTTP {response.status_code} without a SOAP message",
                http_status=response.status_code,
            ) from None

    async def _read(self, response: httpx.Response) -> ClientResponse:
        reader = self._reader(response)
        try:
            message = await read_message(reader, response.aiter_bytes())
        except BaseException:
            reader.discard()
            raise
        return self._response(response, reader, message)

    @staticmethod
    def _response(
        response: httpx.Response, reader: MessageReader, message: ReadMessage
    ) -> ClientResponse:
        try:
            envelope = read_envelope(message.envelope)
            if envelope.body.tag == FAULT:
                raise SoapFault.from_element(envelope.body, http_status=response.status_code)
            addressing = read_addressing(envelope.header, require_action=False)
        except BaseException:
            reader.discard()
            raise
        return ClientResponse(
            body=envelope.body,
            attachments=message.attachments,
            addressing=addressing,
            http_status=response.status_code,
            header=envelope.header,
        )


def _headers(outgoing: OutgoingMessage) -> dict[str, str]:
    return {
        "content-type": outgoing.content_type,
        "content-length": str(outgoing.content_length),
    }


def _encode(
    envelope: bytes, attachments: Sequence[OutgoingAttachment], *, mtom: bool
) -> OutgoingMessage:
    if mtom:
        return mtom_message(envelope, attachments)
    if attachments:
        raise ValueError("attachments need an MTOM message (mtom=True)")
    return simple_message(envelope)


__all__ = ["ClientResponse", "SoapClient"]

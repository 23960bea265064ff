"""The C-MOVE sub-association (PS3.4 C.4.2.2): the Storage SCU association xdsi requests
of a Move Destination, on a blocking socket of the thread serving the C-MOVE.

pynetdicom's ``QueryRetrieveServiceClass._move_scp`` runs the C-MOVE: it asks the AE to
``associate`` with the destination, hands each (Pending, data set) the handler yields to
that association's ``send_c_store`` and ``release``s it at the end.  A pynetdicom
association costs two threads polling each other (its DUL and its reactor), a primitive,
a pydicom ``Dataset`` and an encoded command per message, and a trip through the DUL's
state machine and queue per 16 KB fragment: measured, ~4.6 ms of CPU per instance of
512 KB, several times the cost of the data itself.  :class:`MoveSourceAE` answers that
``associate`` with a :class:`StorageSubAssociation` instead when the handler asks for it:

- the association is negotiated with the PDUs of :mod:`imaging_source.upper_layer`;
- each C-STORE-RQ's command set is encoded by :mod:`imaging_source.dimse_command`, and
  the command and the data set - the bytes of the stored file after its File Meta
  Information when the destination accepted that transfer syntax (PS3.10 7.1), read
  4 MiB at a time - go out as P-DATA-TF PDUs in a few ``sendmsg`` calls, each
  fragment a slice of what was read;
- the C-STORE-RSP is read back in the same thread, and its Status returned as
  ``send_c_store`` returns it.

What the destination does not accept as stored is converted between the uncompressed
transfer syntaxes by pydicom, as before.  A destination that does not answer within the
DIMSE timeout, or breaks PS3.8, gets an A-ABORT; the sub-operation in progress and those
after it fail, and the C-MOVE's final response says so (PS3.4 C.4.2.1.5).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.dsutils import encode

from imaging_source import dimse_command, upper_layer
from imaging_source.instances import StoredInstance
from imaging_source.sub_operations import StoredFile, data_set_offset
from imaging_source.upper_layer import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_RELEASE_RP,
    P_DATA_TF,
    PDU_HEADER,
    PDU_TYPES,
    ProposedContext,
    UpperLayerError,
)

log = logging.getLogger(__name__)

# PS3.8 9.3.1: a PDU xdsi reads other than P-DATA-TF (an A-ASSOCIATE-AC with its user
# information, say) is small; a larger one is refused
LARGEST_CONTROL_PDU = 1 << 20
# Bytes of a message per P-DATA-TF when the destination sets no limit (PS3.8 D.1: 0)
UNLIMITED_FRAGMENT = 1 << 20
# Bytes of a stored data set read and sent at a time
DATA_WINDOW = 4 << 20
_IOV_MAX = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024)
_UNCOMPRESSED = {ImplicitVRLittleEndian: (True, True), ExplicitVRLittleEndian: (False, True)}
# PS3.8 9.3.8 A-ABORT (source, reason): from the service user (xdsi, ending an
# association it requested), and from the service provider for a PDU it does not expect
_USER = (0, 0)
_UNEXPECTED_PDU = (2, 2)


class SubAssociationError(RuntimeError):
    """A C-STORE sub-operation that cannot be made: no association, no context for the
    instance, or the destination gone, silent or breaking PS3.8."""


class _Dul:
    """What pynetdicom's ``_move_scp`` reaches for when an association was not
    established: ``dul.socket.close()``."""

    def __init__(self, association: StorageSubAssociation) -> None:
        self.socket = association


class StorageSubAssociation:
    """An association to a Move Destination, as the Storage SCU (PS3.4 B, C.4.2.2)."""

    def __init__(
        self,
        contexts: Sequence[ProposedContext],
        *,
        dimse_timeout: float | None,
        acse_timeout: float | None,
        maximum_length: int,
        move_originator: str | None = None,
    ) -> None:
        self._socket: socket.socket | None = None
        self.move_originator = move_originator
        self.contexts = {c.context_id: c for c in contexts}
        self.accepted: dict[int, str] = {}
        self.fragment = UNLIMITED_FRAGMENT
        self.dimse_timeout = dimse_timeout
        self.acse_timeout = acse_timeout
        self.maximum_length = maximum_length
        self.dul = _Dul(self)
        self._established = False

    def _accept(self, accept: upper_layer.AssociateAccept) -> None:
        """What the A-ASSOCIATE-AC settled: the contexts, the fragment size."""
        self.fragment = upper_layer.fragment_length(accept.maximum_length, UNLIMITED_FRAGMENT)
        self.accepted = dict(accept.accepted)
        self._established = True

    # -- negotiation
    @classmethod
    def request(
        cls,
        host: str,
        port: int,
        *,
        called: str,
        calling: str,
        abstract_syntaxes: Sequence[tuple[str, Sequence[str]]],
        maximum_length: int,
        implementation_class_uid: str,
        implementation_version_name: str | None,
        acse_timeout: float | None,
        dimse_timeout: float | None,
        move_originator: str | None = None,
        tls: tuple[ssl.SSLContext, str] | None = None,
    ) -> StorageSubAssociation:
        """Request the association; one not established (refused, rejected, unreachable,
        a TLS handshake that failed) is returned with ``is_established`` false, as
        pynetdicom's ``associate`` does.  ``tls``: (context, the peer's host name) to
        speak TLS (PS3.15 B.1), as pynetdicom's ``tls_args``."""
        contexts = [
            ProposedContext(2 * n + 1, abstract, tuple(syntaxes))
            for n, (abstract, syntaxes) in enumerate(abstract_syntaxes[:128])
        ]
        association = cls(
            contexts,
            dimse_timeout=dimse_timeout, acse_timeout=acse_timeout, maximum_length=maximum_length,
            move_originator=move_originator,
        )  # fmt: skip
        try:
            rq = upper_layer.associate_rq(
                called.strip(),
                calling.strip(),
                contexts,
                maximum_length=maximum_length,
                implementation_class_uid=implementation_class_uid,
                implementation_version_name=implementation_version_name,
            )
            sock = socket.create_connection((host, port), timeout=acse_timeout)
        except (OSError, UpperLayerError) as exc:
            log.warning("no association with %s at %s:%s: %s", called, host, port, exc)
            return association
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each PDU goes at once
        if tls is not None:
            context, server_hostname = tls
            try:
                sock = context.wrap_socket(sock, server_hostname=server_hostname)
            except OSError as exc:  # ssl.SSLError among them
                sock.close()
                log.warning("no TLS with %s at %s:%s: %s", called, host, port, exc)
                return association
        association._socket = sock
        try:
            sock.sendall(rq)
            pdu_type, body = association._read_pdu()
            if pdu_type == A_ASSOCIATE_AC:
                association._accept(upper_layer.parse_associate_ac(body))
                sock.settimeout(dimse_timeout)
                return association
            if pdu_type == A_ASSOCIATE_RJ:
                result, source, reason = upper_layer.parse_associate_rj(body)
                log.warning(
                    "%s rejected the association: result %d, source %d, reason %d",
                    called, result, source, reason,
                )  # fmt: skip
            elif pdu_type == A_ABORT:
                log.warning("%s aborted the association request", called)
            else:
                association._send_abort(*_UNEXPECTED_PDU)
        except (OSError, UpperLayerError) as exc:
            log.warning("association with %s failed: %s", called, exc)
            association._send_abort(*_UNEXPECTED_PDU)
        association.close()
        return association

    @property
    def is_established(self) -> bool:
        return self._socket is not None and self._established

    # -- C-STORE
    def send_c_store(
        self,
        dataset: Any,
        msg_id: int = 1,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        """One C-STORE sub-operation (PS3.7 9.3.1): the C-STORE-RSP's Status and its
        Error Comment, as ``Association.send_c_store`` returns them; raises
        :class:`SubAssociationError` when there is no response to give.

        pynetdicom names its own AE title as ``originator_aet``; PS3.7 9.1.1.1 asks for
        the AE that invoked the C-MOVE, which the sub-association was given."""
        if not self.is_established:
            raise SubAssociationError("the association for the C-STORE sub-operation has ended")
        if not isinstance(dataset, StoredFile):
            raise SubAssociationError(f"not a stored instance: {type(dataset).__name__}")
        instance: StoredInstance = dataset.stored
        context_id, data = self._encoded(instance)
        command = dimse_command.c_store_rq(
            msg_id,
            instance.sop_class_uid,
            instance.sop_instance_uid,
            priority=priority,
            move_originator_ae_title=self.move_originator or (originator_aet or "").strip() or None,
            move_originator_message_id=originator_id,
        )
        stored: tuple[BinaryIO, int] | None = None
        if data is None:  # opened first: a file gone fails this sub-operation alone
            try:
                stored = _opened_data_set(instance)
            except OSError as exc:
                raise SubAssociationError(f"{instance.sop_instance_uid}: {exc}") from exc
        try:
            self._send(
                upper_layer.p_data(context_id, command, command=True, fragment=self.fragment)
            )
            if stored is not None:
                self._send_stored(context_id, *stored)
            else:
                self._send(
                    upper_layer.p_data(context_id, data, command=False, fragment=self.fragment)
                )
            response = self._response()
        except (OSError, UpperLayerError, dimse_command.CommandError) as exc:
            self.abort()  # a message cut short cannot be taken back but by A-ABORT
            raise SubAssociationError(f"C-STORE of {instance.sop_instance_uid}: {exc}") from exc
        finally:
            if stored is not None:
                stored[0].close()
        status = dimse_command.us(response, dimse_command.STATUS)
        responded_to = dimse_command.us(response, dimse_command.MESSAGE_ID_BEING_RESPONDED_TO)
        field = dimse_command.us(response, dimse_command.COMMAND_FIELD)
        if status is None or responded_to != msg_id or field != dimse_command.C_STORE_RSP:
            self.abort()
            raise SubAssociationError(f"an invalid C-STORE-RSP for {instance.sop_instance_uid}")
        result = Dataset()
        result.Status = status
        comment = dimse_command.text(response, dimse_command.ERROR_COMMENT)
        if comment:
            result.ErrorComment = comment[:64]
        return result

    def _encoded(self, instance: StoredInstance) -> tuple[int, bytes | None]:
        """The accepted context the instance goes in, and its data set: None to send it
        as stored (:meth:`_send_stored`), else converted to the other uncompressed
        syntax."""
        converted: tuple[int, str] | None = None
        for context_id, syntax in self.accepted.items():
            if self.contexts[context_id].abstract_syntax != instance.sop_class_uid:
                continue
            if syntax == instance.transfer_syntax_uid:
                return context_id, None
            if syntax in _UNCOMPRESSED and instance.transfer_syntax_uid in _UNCOMPRESSED:
                converted = converted or (context_id, syntax)
        if converted is None:
            raise SubAssociationError(
                f"{instance.sop_instance_uid}: the destination accepted no context for "
                f"{instance.sop_class_uid} in {UID(instance.transfer_syntax_uid).name}"
            )
        context_id, syntax = converted
        implicit, little = _UNCOMPRESSED[syntax]
        encoded = encode(dcmread(instance.path), implicit, little, False)
        if encoded is None:
            raise SubAssociationError(f"{instance.sop_instance_uid} cannot be encoded")
        return context_id, encoded

    def _send_stored(self, context_id: int, stream: BinaryIO, remaining: int) -> None:
        """The data set of a stored file, ``remaining`` bytes from where ``stream`` is,
        read and sent :data:`DATA_WINDOW` bytes at a time (a large multi-frame instance
        is never held whole in memory)."""
        window = self.fragment * max(1, DATA_WINDOW // self.fragment)
        buffer = bytearray(min(window, remaining))
        while True:
            size = min(window, remaining)
            got = stream.readinto(memoryview(buffer)[:size]) if size else 0
            if got != size:
                raise OSError("the stored file is shorter than when it was opened")
            remaining -= size
            self._send(
                upper_layer.p_data(
                    context_id,
                    memoryview(buffer)[:size],
                    command=False,
                    fragment=self.fragment,
                    last=remaining == 0,
                )
            )
            if remaining == 0:
                return

    def _response(self) -> dict[int, bytes]:
        """The command set of the next message: a C-STORE-RSP has no data set."""
        command = bytearray()
        while True:
            pdu_type, body = self._read_pdu()
            if pdu_type == A_ABORT:
                self.close()
                source, reason = upper_layer.parse_abort(body)
                raise UpperLayerError(f"the destination aborted (source {source}, reason {reason})")
            if pdu_type != P_DATA_TF:
                raise UpperLayerError(f"PDU type 0x{pdu_type:02X} where a C-STORE-RSP was due")
            for fragment in upper_layer.parse_p_data(body):
                if not fragment.command or fragment.context_id not in self.accepted:
                    raise UpperLayerError("a data set or another context in a C-STORE-RSP")
                command += fragment.data
                if fragment.last:
                    return dimse_command.read_command(command)

    # -- release, abort
    def release(self) -> None:
        """A-RELEASE-RQ, then the A-RELEASE-RP awaited for the ACSE timeout (PS3.8
        7.2); the connection is closed either way."""
        sock = self._socket
        if sock is None:
            return
        try:
            sock.settimeout(self.acse_timeout)
            sock.sendall(upper_layer.release_rq())
            deadline = None if self.acse_timeout is None else time.monotonic() + self.acse_timeout
            while True:
                pdu_type, _body = self._read_pdu()
                if pdu_type in (A_RELEASE_RP, A_ABORT):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("no A-RELEASE-RP")
        except (OSError, UpperLayerError) as exc:
            log.warning("release of the sub-association failed: %s", exc)
            self._send_abort(*_USER)
        self.close()

    def abort(self) -> None:
        self._send_abort(*_USER)
        self.close()

    def close(self) -> None:
        sock, self._socket = self._socket, None
        self.accepted = {}
        if sock is not None:
            sock.close()

    def _send_abort(self, source: int, reason: int) -> None:
        if self._socket is None:
            return
        try:
            self._socket.settimeout(1.0)
            self._socket.sendall(upper_layer.abort(source, reason))
        except OSError:
            pass

    # -- the socket
    def _send(self, buffers: list[bytes | memoryview]) -> None:
        """Write the buffers in order, as few ``sendmsg`` calls as the kernel allows (TLS:
        joined, one ``sendall``; an SSL socket has no ``sendmsg``)."""
        sock = self._socket
        if sock is None:
            raise OSError("the sub-association is closed")
        if isinstance(sock, ssl.SSLSocket):
            sock.sendall(b"".join(buffers))
            return
        views = [memoryview(b) for b in buffers]
        start = 0
        while start < len(views):
            sent = sock.sendmsg(views[start : start + _IOV_MAX])
            while sent:
                head = len(views[start])
                if sent >= head:
                    sent -= head
                    start += 1
                else:
                    views[start] = views[start][sent:]
                    sent = 0
            while start < len(views) and not len(views[start]):
                start += 1

    def _read_pdu(self) -> tuple[int, memoryview]:
        header = self._read_exactly(PDU_HEADER.size)
        pdu_type, length = PDU_HEADER.unpack(header)
        if pdu_type not in PDU_TYPES:
            raise UpperLayerError(f"not a PDU type (PS3.8 9.3.1): 0x{pdu_type:02X}")
        limit = LARGEST_CONTROL_PDU
        if pdu_type == P_DATA_TF and self.maximum_length:
            limit = self.maximum_length  # PS3.8 D.1: what xdsi said it takes
        if length > limit:
            raise UpperLayerError(f"a PDU of {length} bytes, more than {limit}")
        return pdu_type, self._read_exactly(length)

    def _read_exactly(self, size: int) -> memoryview:
        sock = self._socket
        if sock is None:
            raise OSError("the sub-association is closed")
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            n = sock.recv_into(view[got:])
            if n == 0:
                self.close()
                raise UpperLayerError("the destination closed the connection")
            got += n
        return view


def _opened_data_set(instance: StoredInstance) -> tuple[BinaryIO, int]:
    """The stored file open at its data set, and the data set's length."""
    stream = open(instance.path, "rb")  # noqa: SIM115 - closed by the caller
    try:
        start = data_set_offset(stream, instance.path)
        length = os.fstat(stream.fileno()).st_size - start
        stream.seek(start)
    except BaseException:
        stream.close()
        raise
    return stream, length


class MoveSourceAE(AE):
    """pynetdicom's AE, whose ``associate`` gives a :class:`StorageSubAssociation` when
    asked with ``sub_association=True`` (a C-MOVE handler's third yield does), with the
    AE title of the C-MOVE's requestor as ``move_originator``."""

    def associate(  # type: ignore[override]
        self,
        addr: str,
        port: int,
        *args: Any,
        sub_association: bool = False,
        move_originator: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not sub_association:
            return super().associate(addr, port, *args, **kwargs)
        contexts = kwargs.get("contexts") or (args[0] if args else [])
        tls_args = kwargs.get("tls_args")
        return StorageSubAssociation.request(
            addr,
            port,
            called=str(kwargs.get("ae_title") or "ANY-SCP"),
            calling=str(self.ae_title),
            abstract_syntaxes=[(c.abstract_syntax, c.transfer_syntax) for c in contexts],
            maximum_length=int(kwargs.get("max_pdu") or self.maximum_pdu_size),
            implementation_class_uid=str(self.implementation_class_uid),
            implementation_version_name=self.implementation_version_name,
            acse_timeout=self.acse_timeout,
            dimse_timeout=self.dimse_timeout,
            move_originator=move_originator,
            tls=tls_args,
        )


__all__ = ["MoveSourceAE", "StorageSubAssociation", "SubAssociationError"]

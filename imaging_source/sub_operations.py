"""The C-STORE sub-operations of C-MOVE and C-GET (PS3.4 C.4.2.2, C.4.3.2), each
instance sent as stored.

An instance is stored as it was received, a Part 10 file in the transfer syntax it came
in (PS3.10 7.1).  When the association the sub-operations go over has accepted a
presentation context of that SOP Class in that transfer syntax, the data set is sent as
the file holds it after the File Meta Information, neither decoded nor encoded again:
the bytes xdsi was given, and no per-instance CPU spent on them.  Otherwise
(uncompressed data accepted only in the other uncompressed syntax) it is decoded and
pynetdicom's ``send_c_store`` encodes it in a transfer syntax the peer accepted.

pynetdicom 3.0.4 takes the data set of each sub-operation from the (status, dataset)
pairs the C-MOVE/C-GET handler yields and requires a ``Dataset`` there
(``QueryRetrieveServiceClass._move_scp``/``_get_scp``), which it hands to
``send_c_store`` of the association the sub-operations go over.  So the handler yields
a :class:`StoredFile` - a ``Dataset`` naming the instance by its UIDs, which pynetdicom
lists in the Failed SOP Instance UID List when its sub-operation fails (PS3.4
C.4.2.1.4.2) - and the association sends the file it names:

- a C-MOVE's sub-association is xdsi's own (:mod:`imaging_source.sub_association`);
- a C-GET's C-STOREs go back over the C-GET's association, pynetdicom's, whose
  ``send_c_store`` :func:`send_as_stored` puts an :class:`AsStoredSender` in front of.
  It makes the C-STORE exchange with :func:`requestor.exchange`, without the reactor
  pause of pynetdicom's ``send_*`` (up to one reactor sleep, 1 ms, per instance).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import split_dataset
from pynetdicom.presentation import PresentationContext

from imaging_source.instances import StoredInstance
from imaging_source.requestor import can_exchange, exchange

log = logging.getLogger(__name__)


class StoredFile(Dataset):
    """A sub-operation's instance as a C-MOVE/C-GET handler yields it: SOP Class and
    Instance UIDs, and the stored instance (its file) as ``stored``.  It has no File Meta
    Information, so a ``send_c_store`` without :class:`AsStoredSender` refuses it (a
    failed sub-operation) rather than send these two elements as the instance."""

    def __init__(self, instance: StoredInstance) -> None:
        super().__init__()
        self.SOPClassUID = instance.sop_class_uid
        self.SOPInstanceUID = instance.sop_instance_uid
        self.stored = instance


def stored_context(assoc: Any, instance: StoredInstance) -> PresentationContext | None:
    """The context ``assoc`` accepted for sending ``instance`` (as the Storage SCU) in
    the transfer syntax it is stored in, if any."""
    for context in assoc.accepted_contexts:
        if (
            context.as_scu
            and context.abstract_syntax == instance.sop_class_uid
            and context.transfer_syntax[0] == instance.transfer_syntax_uid
        ):
            return context
    return None


# PS3.10 7.1: a 128-byte preamble, "DICM", then File Meta Information Group Length
# (0002,0000) UL in Explicit VR Little Endian - its value the length of the rest of the
# group, after which the data set begins
_PART10_HEAD = 128 + 4 + 12
_GROUP_LENGTH_ELEMENT = b"DICM\x02\x00\x00\x00UL\x04\x00"


def data_set_offset(stream: BinaryIO, path: Path) -> int:
    """Where the data set of the Part 10 file open as ``stream`` (at its start) begins:
    after its File Meta Information, found from its group length, or by pydicom reading
    the group when that is absent."""
    head = stream.read(_PART10_HEAD)
    if len(head) == _PART10_HEAD and head[128:140] == _GROUP_LENGTH_ELEMENT:
        return _PART10_HEAD + int.from_bytes(head[140:144], "little")
    _meta, offset = split_dataset(path)
    return int(offset)


def stored_data_set(instance: StoredInstance) -> bytes:
    """The encoded data set of the stored file: what follows its File Meta Information."""
    with open(instance.path, "rb") as stream:
        stream.seek(data_set_offset(stream, instance.path))
        return stream.read()


def status_of(response: Any, msg_id: int) -> Dataset:
    """A C-STORE-RSP as ``send_c_store`` returns it: Status and the optional status
    elements (PS3.7 9.1.1.1.9, C), or an empty Dataset when it is none."""
    status = Dataset()
    if (
        isinstance(response, C_STORE)
        and response.is_valid_response
        and response.MessageIDBeingRespondedTo == msg_id
    ):
        status.Status = response.Status
        for keyword in response.STATUS_OPTIONAL_KEYWORDS:
            if getattr(response, keyword, None) is not None:
                setattr(status, keyword, getattr(response, keyword))
    return status


class AsStoredSender:
    """``Association.send_c_store`` in front of the association's own: a
    :class:`StoredFile` goes as its file's bytes where a context allows, decoded
    otherwise; anything else is passed through."""

    def __init__(self, assoc: Any) -> None:
        self.assoc = assoc
        self.send_c_store: Callable[..., Dataset] = assoc.send_c_store

    def __call__(
        self,
        dataset: Any,
        msg_id: int = 1,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        send = (msg_id, priority, originator_aet, originator_id)
        if not isinstance(dataset, StoredFile):
            return self.send_c_store(dataset, *send)
        instance: StoredInstance = dataset.stored
        context = stored_context(self.assoc, instance)
        if context is None or not can_exchange(self.assoc):
            return self.send_c_store(dcmread(instance.path), *send)
        if not self.assoc.is_established:
            raise RuntimeError("the association for the C-STORE sub-operation has ended")
        # PS3.7 9.1.1.1, 9.3.1.1: the C-STORE-RQ of a sub-operation
        request = C_STORE()
        request.MessageID = msg_id
        request.Priority = priority
        request.AffectedSOPClassUID = instance.sop_class_uid
        request.AffectedSOPInstanceUID = instance.sop_instance_uid
        request.MoveOriginatorApplicationEntityTitle = originator_aet
        request.MoveOriginatorMessageID = originator_id
        request.DataSet = BytesIO(stored_data_set(instance))
        response = exchange(self.assoc, request, int(context.context_id or 0))
        status = status_of(response, msg_id)
        if response is not None and "Status" not in status and self.assoc.is_established:
            log.error("invalid C-STORE response from %s", self.assoc.remote.get("ae_title"))
            self.assoc.abort()
        return status


def send_as_stored(assoc: Any) -> None:
    """Make ``assoc.send_c_store`` an :class:`AsStoredSender` (once)."""
    if not isinstance(assoc.send_c_store, AsStoredSender):
        assoc.send_c_store = AsStoredSender(assoc)


__all__ = [
    "AsStoredSender",
    "StoredFile",
    "send_as_stored",
    "status_of",
    "data_set_offset",
    "stored_context",
    "stored_data_set",
]

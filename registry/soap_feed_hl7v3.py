"""ITI-44 Patient Identity Feed HL7 v3 on the registry endpoint.

ITI TF-2 3.44.5 / Appendix V: simple SOAP 1.2 with WS-Addressing; the request Action is
the interaction (``urn:hl7-org:v3:PRPA_IN201301UV02``, ``...201302UV02``,
``...201304UV02``) and every answer is ``urn:hl7-org:v3:MCCI_IN000002UV01``.  A body
whose interaction is not the one the Action names is rejected (AR).
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree
from starlette.concurrency import run_in_threadpool

from ebxml.vocabulary import RESPONSE_ACTION, Action
from registry.feed_hl7v3 import Hl7v3Feed
from registry.hl7v3 import (
    NS_HL7,
    AckCode,
    Acknowledgement,
    AcknowledgementDetail,
    ErrorCondition,
    Interaction,
    build_acknowledgement,
    message_id_of,
    sender_of,
)
from soap.message import Operation, SoapRequest, SoapResponse

# Action -> the interaction its body must be (ITI TF-2 3.44.4.1.2, 3.44.4.2.2)
ACTION_INTERACTION: dict[str, Interaction] = {
    Action.ITI44_ADD: Interaction.PATIENT_ADDED,
    Action.ITI44_REVISE: Interaction.PATIENT_REVISED,
    Action.ITI44_MERGE: Interaction.PATIENTS_MERGED,
}


def _mismatch(feed: Hl7v3Feed, body: etree._Element, expected: Interaction) -> etree._Element:
    text = f"the Action names {expected}, the body is {body.tag}"
    detail = AcknowledgementDetail(ErrorCondition.UNSUPPORTED_MESSAGE_TYPE, text, "/")
    return build_acknowledgement(
        Acknowledgement(AckCode.REJECT, message_id_of(body), (detail,)),
        message_id=feed.message_ids(),
        creation_time=feed.clock(),
        sender=feed.config.device_id,
        receiver=sender_of(body),
    )


def patient_feed_operations(feed: Hl7v3Feed) -> Mapping[str, Operation]:
    """The three ITI-44 Operations for the ``/xds/registry`` Service, keyed by Action."""

    def operation(action: str, interaction: Interaction) -> Operation:
        expected = f"{{{NS_HL7}}}{interaction}"

        async def handler(request: SoapRequest) -> SoapResponse:
            if request.body.tag != expected:
                return SoapResponse(_mismatch(feed, request.body, interaction))
            return SoapResponse(await run_in_threadpool(feed.handle, request.body))

        return Operation(action, RESPONSE_ACTION[action], handler)

    return {
        action: operation(action, interaction) for action, interaction in ACTION_INTERACTION.items()
    }


__all__ = ["ACTION_INTERACTION", "patient_feed_operations"]

"""SOAP 1.2, WS-Addressing, MTOM/XOP: framing, faults, dispatch and a client.  Knows no XDS."""

from soap.app import build_soap_routes
from soap.client import ClientResponse, SoapClient
from soap.envelope import parse_xml, secure_parser
from soap.faults import FaultCode, SoapFault
from soap.limits import Limits
from soap.message import (
    Addressing,
    Attachment,
    Handler,
    Operation,
    OutgoingAttachment,
    Service,
    SoapRequest,
    SoapResponse,
)

__all__ = [
    "Addressing",
    "Attachment",
    "ClientResponse",
    "FaultCode",
    "Handler",
    "Limits",
    "Operation",
    "OutgoingAttachment",
    "Service",
    "SoapClient",
    "SoapFault",
    "SoapRequest",
    "SoapResponse",
    "build_soap_routes",
    "parse_xml",
    "secure_parser",
]

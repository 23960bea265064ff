"""What every fuzzed SOAP request must get back: a well-formed SOAP 1.2 envelope whose
Body holds one element - the response the transaction names with HTTP 200, or a Fault
with the status of SOAP 1.2 Part 2 7.5.1.2 and ITI TF-2 Appendix V (400, 413, 415,
500)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from e2e_support import NS, parse_response
from lxml import etree

FAULT = f"{{{NS['soap']}}}Fault"
FAULT_STATUSES = frozenset({400, 413, 415, 500})


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: etree._Element  # the env:Body child: a response element or env:Fault

    @property
    def is_fault(self) -> bool:
        return self.body.tag == FAULT

    @property
    def registry_status(self) -> str | None:
        """The ebRS status of the response (nested in an ITI-43 response)."""
        status = self.body.get("status")
        if status is None:
            nested = self.body.find("rs:RegistryResponse", NS)
            status = nested.get("status") if nested is not None else None
        return status


def well_formed(response: httpx.Response) -> Answer:
    """A SOAP 1.2 envelope whose Body holds one element; a Fault only with a fault status,
    anything else only with 200."""
    package = parse_response(response.headers.get("content-type", ""), response.content)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    envelope = etree.fromstring(package.root, parser)
    assert envelope.tag == f"{{{NS['soap']}}}Envelope", envelope.tag
    body = envelope.find("soap:Body", NS)
    assert body is not None and len(body) == 1
    answer = Answer(response.status_code, body[0])
    if answer.is_fault:
        assert response.status_code in FAULT_STATUSES, response.status_code
    else:
        assert response.status_code == 200, (response.status_code, answer.body.tag)
    return answer


__all__ = ["FAULT", "FAULT_STATUSES", "Answer", "well_formed"]

"""How the repository reaches its registry for ITI-42 Register Document Set-b.

One seam, chosen once at start-up: :class:`InProcessRegistryClient` calls the
registry actor of this process; :class:`SoapRegistryClient` sends simple SOAP to a
remote one (ITI TF-2 3.42.5, Appendix V).  Both are synchronous - the actor code runs
in a worker thread.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import httpx

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import Submission
from ebxml.serialize import submit_objects_request
from ebxml.vocabulary import Action
from ebxml.wire import parse_registry_response
from soap.client import SoapClient
from soap.faults import SoapFault

log = logging.getLogger(__name__)


@runtime_checkable
class RegistryClient(Protocol):
    def register(self, submission: Submission) -> RegistryResponse: ...


class _Registry(Protocol):
    """What :class:`InProcessRegistryClient` needs of ``registry.service.DocumentRegistry``."""

    def register(self, submission: Submission) -> RegistryResponse: ...


class InProcessRegistryClient:
    """The registry in this process: a direct call, same contract as over the wire."""

    def __init__(self, registry: _Registry) -> None:
        self.registry = registry

    def register(self, submission: Submission) -> RegistryResponse:
        return self.registry.register(submission)


def not_available(reason: str) -> RegistryResponse:
    """ITI TF-3 Table 4.2.4.1-2: the repository could not reach its registry."""
    return RegistryResponse.from_errors([RegistryError(ErrorCode.XDSRegistryNotAvailable, reason)])


# Failures of the exchange itself, before a RegistryResponse could be read.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)


class SoapRegistryClient:
    """ITI-42 over simple SOAP 1.2 (ITI TF-2 V.3) to ``url``.

    A transport failure (refused, timed out, reset) is answered with
    ``XDSRegistryNotAvailable``; a SOAP fault from the registry with ``XDSRegistryError``.
    ``client_options`` go to ``soap.client.SoapClient`` (timeout, TLS, transport).
    Call from a worker thread: each call runs its own event loop.
    """

    def __init__(self, url: str, **client_options: Any) -> None:
        self.url = url
        self.client = SoapClient(url, **client_options)

    def register(self, submission: Submission) -> RegistryResponse:
        body = submit_objects_request(submission)
        try:
            response = self.client.call_sync(Action.ITI42, body, mtom=False)
        except TRANSPORT_ERRORS as exc:
            log.warning("registry %s not reachable: %s", self.url, exc)
            return not_available(f"registry {self.url} not reachable: {exc}")
        except SoapFault as fault:
            log.warning("registry %s answered a SOAP fault: %s", self.url, fault.reason)
            return RegistryResponse.from_errors(
                [RegistryError(ErrorCode.XDSRegistryError, f"registry fault: {fault.reason}")]
            )
        return parse_registry_response(response.body)


__all__ = [
    "TRANSPORT_ERRORS",
    "InProcessRegistryClient",
    "RegistryClient",
    "SoapRegistryClient",
    "not_available",
]

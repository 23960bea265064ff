"""registry.soap_service.registry_busy: XDSRegistryBusy in the request's response."""

from __future__ import annotations

from ebxml.tags import QUERY, RS
from ebxml.vocabulary import Action, ResponseStatus
from registry.soap_service import registry_busy


def test_busy_register_is_a_registry_response_failure_with_xds_registry_busy() -> None:
    body = registry_busy(Action.ITI42)
    assert body.tag == RS.RegistryResponse
    assert body.get("status") == ResponseStatus.FAILURE
    assert [e.get("errorCode") for e in body.iter(RS.RegistryError)] == ["XDSRegistryBusy"]


def test_busy_stored_query_is_an_adhoc_query_response_failure() -> None:
    body = registry_busy(Action.ITI18)
    assert body.tag == QUERY.AdhocQueryResponse
    assert body.get("status") == ResponseStatus.FAILURE
    assert [e.get("errorCode") for e in body.iter(RS.RegistryError)] == ["XDSRegistryBusy"]

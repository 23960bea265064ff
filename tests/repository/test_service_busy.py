"""repository.service.repository_busy: XDSRepositoryBusy in the request's response."""

from __future__ import annotations

from ebxml.tags import RS, XDSB
from ebxml.vocabulary import Action, ResponseStatus
from repository.service import repository_busy


def test_busy_provide_is_a_registry_response_failure_with_xds_repository_busy() -> None:
    body = repository_busy(Action.ITI41)
    assert body.tag == RS.RegistryResponse
    assert body.get("status") == ResponseStatus.FAILURE
    assert [e.get("errorCode") for e in body.iter(RS.RegistryError)] == ["XDSRepositoryBusy"]


def test_busy_retrieve_is_a_retrieve_document_set_response_failure() -> None:
    body = repository_busy(Action.ITI43)
    assert body.tag == XDSB.RetrieveDocumentSetResponse
    assert body.find(RS.RegistryResponse).get("status") == ResponseStatus.FAILURE
    assert [e.get("errorCode") for e in body.iter(RS.RegistryError)] == ["XDSRepositoryBusy"]

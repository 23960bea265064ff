"""repository/registry_client.py: the ITI-42 and ITI-18 GetDocuments seam, in-process
and over simple SOAP (the real soap/ stack, in-process ASGI; the registry endpoint is
scripted, or the real registry actor and its endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from registry_actor import (
    OTHER_PATIENT,
    new_oid,
    new_uuid,
    registrable_entry,
    stored_entry,
    submission_of,
)
from repository_fixtures import OTHER_REPOSITORY_ID, REPOSITORY_ID, ScriptedRegistry, document_entry
from starlette.applications import Starlette

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryResponse, RegistryResponse
from ebxml.model import Association, DocumentEntry, Submission, SubmissionSet
from ebxml.parse import parse_submit_objects_request
from ebxml.query import GetDocumentsQuery, parse_stored_query
from ebxml.serialize import registry_response
from ebxml.tags import RIM
from ebxml.vocabulary import (
    RESPONSE_ACTION,
    Action,
    AssociationType,
    QueryParameter,
    ResponseStatus,
    ReturnType,
    StoredQuery,
)
from ebxml.wire import adhoc_query_request, adhoc_query_response, parse_adhoc_query_request
from registry.db import make_engine
from registry.service import DocumentRegistry
from registry.soap_service import registry_service
from repository.registry_client import (
    GET_DOCUMENTS_BATCH,
    InProcessRegistryClient,
    RegistryClient,
    RegistryNotAvailable,
    SoapRegistryClient,
    get_documents_request,
)
from soap.app import build_soap_routes
from soap.faults import sender_fault
from soap.limits import Limits
from soap.message import Operation, Service, SoapRequest, SoapResponse

URL = "http://registry.test/xds/registry"


def submission() -> Submission:
    entry = document_entry(hash="a" * 40, size=7, repository_unique_id="1.2.3.4")
    return Submission(
        SubmissionSet(entry_uuid="urn:uuid:8d1b7c2a-0000-4000-8000-000000000001"), (entry,)
    )


class RegistryEndpoint:
    """A scripted ITI-42 endpoint: keeps what it received, answers as told."""

    def __init__(self) -> None:
        self.received: list[Submission] = []
        self.response = RegistryResponse(ResponseStatus.SUCCESS)
        self.fault = False

    async def handle(self, request: SoapRequest) -> SoapResponse:
        if self.fault:
            raise sender_fault("not a SubmitObjectsRequest")
        self.received.append(parse_submit_objects_request(request.body).value)
        return SoapResponse(registry_response(self.response))

    def transport(self) -> httpx.ASGITransport:
        operation = Operation(Action.ITI42, RESPONSE_ACTION[Action.ITI42], self.handle)
        app = Starlette(
            routes=build_soap_routes(
                [Service("/xds/registry", {Action.ITI42: operation})], Limits()
            )
        )
        return httpx.ASGITransport(app=app)


@pytest.fixture
def endpoint() -> RegistryEndpoint:
    return RegistryEndpoint()


def test_in_process_client_calls_the_registry() -> None:
    registry = ScriptedRegistry()
    client = InProcessRegistryClient(registry)
    sent = submission()
    assert client.register(sent) == RegistryResponse(ResponseStatus.SUCCESS)
    assert registry.submissions == [sent]
    assert isinstance(client, RegistryClient)


def test_soap_client_sends_the_submission_as_iti42(endpoint: RegistryEndpoint) -> None:
    client = SoapRegistryClient(URL, transport=endpoint.transport())
    response = client.register(submission())
    assert response.status == ResponseStatus.SUCCESS
    [received] = endpoint.received
    [entry] = received.document_entries
    assert (entry.hash, entry.size, entry.repository_unique_id) == ("a" * 40, 7, "1.2.3.4")


def test_soap_client_answers_the_registry_errors_as_given(endpoint: RegistryEndpoint) -> None:
    error = RegistryError(ErrorCode.XDSUnknownPatientId, "patient not known", "Document01")
    endpoint.response = RegistryResponse.from_errors([error])
    response = SoapRegistryClient(URL, transport=endpoint.transport()).register(submission())
    assert response == RegistryResponse(ResponseStatus.FAILURE, (error,))


def test_unreachable_registry_is_registry_not_available() -> None:
    client = SoapRegistryClient("http://127.0.0.1:9/xds/registry", timeout=5)
    response = client.register(submission())
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryNotAvailable]


def test_soap_fault_from_registry_is_registry_error(endpoint: RegistryEndpoint) -> None:
    endpoint.fault = True
    response = SoapRegistryClient(URL, transport=endpoint.transport()).register(submission())
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryError]


# --- ITI-18 GetDocuments: which pending documents the registry lists -------------------


def test_get_documents_request_asks_by_unique_id_for_leaf_class() -> None:
    # ITI TF-2 3.18.4.1.2.3.7.5: by uniqueId, LeafClass, no $MetadataLevel
    elem = adhoc_query_request(get_documents_request(["1.2.3", "1.2.'4"]))
    [slot] = elem.iter(RIM.Slot)
    assert slot.get("name") == QueryParameter.DOC_ENTRY_UNIQUE_ID
    assert [v.text for v in slot.iter(RIM.Value)] == ["('1.2.3','1.2.''4')"]
    request = parse_adhoc_query_request(elem)
    assert (request.query_id, request.return_type) == (
        StoredQuery.GET_DOCUMENTS,
        ReturnType.LEAF_CLASS,
    )
    assert parse_stored_query(request).params == GetDocumentsQuery(unique_id=("1.2.3", "1.2.'4"))


def register(registry: DocumentRegistry, *entries: DocumentEntry, **options: object) -> None:
    response = registry.register(submission_of(*entries, **options))  # type: ignore[arg-type]
    assert response.status == ResponseStatus.SUCCESS, response.errors


@pytest.fixture
def listed(document_registry: DocumentRegistry) -> dict[str, str]:
    """Documents in the real registry: two of this repository (one of them since
    deprecated by an RPLC, one of another patient) and one of another repository."""
    ours = stored_entry(registrable_entry(), REPOSITORY_ID)
    other_patient = stored_entry(registrable_entry(OTHER_PATIENT), REPOSITORY_ID)
    theirs = stored_entry(registrable_entry(), OTHER_REPOSITORY_ID)
    register(document_registry, ours, theirs)
    register(document_registry, other_patient, patient=OTHER_PATIENT)
    replacement = stored_entry(registrable_entry(), REPOSITORY_ID)
    rplc = Association(new_uuid(), AssociationType.RPLC, replacement.entry_uuid, ours.entry_uuid)
    register(document_registry, replacement, extra=(rplc,))
    return {
        "ours": ours.unique_id,
        "other_patient": other_patient.unique_id,
        "replacement": replacement.unique_id,
        "theirs": theirs.unique_id,
        "unknown": new_oid(),
    }  # type: ignore[return-value]


def our_documents(listed: dict[str, str]) -> set[str]:
    return {listed["ours"], listed["other_patient"], listed["replacement"]}


def test_in_process_client_lists_registered_documents_of_this_repository(
    document_registry: DocumentRegistry, listed: dict[str, str]
) -> None:
    # any status (the RPLC deprecated "ours"), any patient; not another repository's
    client = InProcessRegistryClient(document_registry)
    assert client.registered_documents(list(listed.values()), REPOSITORY_ID) == our_documents(
        listed
    )


class CountingTransport(httpx.ASGITransport):
    """An in-process transport that counts the requests it carries."""

    requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


def registry_endpoint(registry: DocumentRegistry) -> CountingTransport:
    """The real ``/xds/registry`` endpoint of ``registry``, in-process ASGI."""
    routes = build_soap_routes([registry_service(registry)], Limits())
    return CountingTransport(app=Starlette(routes=routes))


def test_soap_client_lists_registered_documents_of_this_repository(
    document_registry: DocumentRegistry, listed: dict[str, str]
) -> None:
    client = SoapRegistryClient(URL, transport=registry_endpoint(document_registry))
    assert client.registered_documents(list(listed.values()), REPOSITORY_ID) == our_documents(
        listed
    )


def test_soap_client_asks_in_batches(
    document_registry: DocumentRegistry, listed: dict[str, str]
) -> None:
    transport = registry_endpoint(document_registry)
    client = SoapRegistryClient(URL, transport=transport)
    unknown = [new_oid() for _ in range(GET_DOCUMENTS_BATCH)]
    assert client.registered_documents([*unknown, listed["ours"]], REPOSITORY_ID) == {
        listed["ours"]
    }
    assert transport.requests == 2


def test_unreachable_registry_cannot_tell_which_documents_it_lists() -> None:
    client = SoapRegistryClient("http://127.0.0.1:9/xds/registry", timeout=5)
    with pytest.raises(RegistryNotAvailable):
        client.registered_documents(["1.2.3"], REPOSITORY_ID)


def query_endpoint(answer: Callable[[SoapRequest], SoapResponse]) -> httpx.ASGITransport:
    """A scripted ITI-18 endpoint answering with ``answer``."""

    async def handle(request: SoapRequest) -> SoapResponse:
        return answer(request)

    operation = Operation(Action.ITI18, RESPONSE_ACTION[Action.ITI18], handle)
    service = Service("/xds/registry", {Action.ITI18: operation})
    return httpx.ASGITransport(app=Starlette(routes=build_soap_routes([service], Limits())))


def failed_query(request: SoapRequest) -> SoapResponse:
    error = RegistryError(ErrorCode.XDSRegistryError, "database down")
    failure = AdhocQueryResponse(ResponseStatus.FAILURE, errors=(error,))
    return SoapResponse(adhoc_query_response(failure, ReturnType.LEAF_CLASS))


def faulted_query(request: SoapRequest) -> SoapResponse:
    raise sender_fault("not an AdhocQueryRequest")


def registry_response_to_query(request: SoapRequest) -> SoapResponse:
    return SoapResponse(registry_response(RegistryResponse(ResponseStatus.SUCCESS)))


@pytest.mark.parametrize(
    "answer", [failed_query, faulted_query, registry_response_to_query], ids=lambda f: f.__name__
)
def test_registry_answer_without_a_result_cannot_tell(
    answer: Callable[[SoapRequest], SoapResponse],
) -> None:
    client = SoapRegistryClient(URL, transport=query_endpoint(answer))
    with pytest.raises(RegistryNotAvailable):
        client.registered_documents(["1.2.3"], REPOSITORY_ID)


def test_in_process_client_cannot_tell_when_the_registry_database_fails(
    tmp_path: Path,
) -> None:
    # a database without the registry's tables: the query fails in SQL
    engine = make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")
    client = InProcessRegistryClient(DocumentRegistry(engine))
    try:
        with pytest.raises(RegistryNotAvailable):
            client.registered_documents(["1.2.3"], REPOSITORY_ID)
    finally:
        engine.dispose()

"""registry/feed_hl7v3.py and registry/soap_feed_hl7v3.py: ITI-44 at the Document
Registry (ITI TF-2 3.44.4.1.3, 3.44.4.2.4), on SQLite and PostgreSQL, directly and
over the SOAP stack."""

from __future__ import annotations

from pathlib import Path
from string import Template

import httpx
import pytest
from lxml import etree
from registry_builders import document_entry, submit
from sqlalchemy import Engine, select
from starlette.applications import Starlette

from ebxml.messages import AdhocQueryRequest
from ebxml.vocabulary import Action, AvailabilityStatus, QueryParameter, StoredQuery
from registry import patients
from registry.feed_hl7v3 import FeedOutcome, Hl7v3Feed, Hl7v3FeedConfig
from registry.hl7v3 import (
    NS_HL7,
    AckCode,
    Acknowledgement,
    ErrorCondition,
    InstanceIdentifier,
    Interaction,
    parse_acknowledgement,
)
from registry.service import DocumentRegistry
from registry.soap_feed_hl7v3 import patient_feed_operations
from registry.stored_query import StoredQueryConfig, execute_stored_query
from registry.tables import PatientRow
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits
from soap.message import Service

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7v3"
AUTHORITY = "1.3.6.1.4.1.21367.13.20.1000"
DEVICE = "1.3.6.1.4.1.21367.13.10.2"
V3 = f"{{{NS_HL7}}}"


def cx(ident: str) -> str:
    return f"{ident}^^^&{AUTHORITY}&ISO"


def message(interaction: Interaction, **values: str) -> etree._Element:
    defaults = dict(
        message_id="MSG-1",
        patient_id="ALPHA-1",
        surviving_id="ALPHA-1",
        subsumed_id="ALPHA-2",
        authority=AUTHORITY,
    )
    text = Template((FIXTURES / f"{interaction}.xml").read_text()).substitute(defaults | values)
    return etree.fromstring(text.encode())


@pytest.fixture
def registry(engine: Engine) -> DocumentRegistry:
    return DocumentRegistry(engine)


@pytest.fixture
def outcomes() -> list[FeedOutcome]:
    return []


@pytest.fixture
def feed(registry: DocumentRegistry, outcomes: list[FeedOutcome]) -> Hl7v3Feed:
    return Hl7v3Feed(registry, Hl7v3FeedConfig(AUTHORITY, DEVICE), on_outcome=outcomes.append)


def handle(feed: Hl7v3Feed, interaction: Interaction, **values: str) -> Acknowledgement:
    return parse_acknowledgement(feed.handle(message(interaction, **values)))


def known(registry: DocumentRegistry, patient_id: str) -> bool:
    with registry.sessions() as session:
        return patients.is_known(session, patient_id)


def demographics(registry: DocumentRegistry, patient_id: str) -> dict:
    with registry.sessions() as session:
        return session.scalar(
            select(PatientRow.demographics).where(PatientRow.patient_id == patient_id)
        )


# --- add / revise (ITI TF-2 3.44.4.1.3) -------------------------------------------------------


def test_added_patient_becomes_known(feed: Hl7v3Feed, registry: DocumentRegistry) -> None:
    ack = handle(feed, Interaction.PATIENT_ADDED)
    assert ack.code == AckCode.ACCEPT
    assert ack.target_message_id == InstanceIdentifier("1.2.840.114350.1.13.0.1.7.1.1", "MSG-1")
    assert known(registry, cx("ALPHA-1"))


def test_only_ids_of_the_affinity_domain_are_kept(
    feed: Hl7v3Feed, registry: DocumentRegistry
) -> None:
    handle(feed, Interaction.PATIENT_ADDED)
    with registry.sessions() as session:
        assert session.scalars(select(PatientRow.patient_id)).all() == [cx("ALPHA-1")]


def test_message_without_an_affinity_id_stores_nothing(
    feed: Hl7v3Feed, registry: DocumentRegistry
) -> None:
    ack = handle(feed, Interaction.PATIENT_ADDED, authority="1.2.3.999")
    assert ack.code == AckCode.ACCEPT
    with registry.sessions() as session:
        assert session.scalars(select(PatientRow.patient_id)).all() == []


def test_unusable_patient_id_is_an_application_error(feed: Hl7v3Feed) -> None:
    ack = handle(feed, Interaction.PATIENT_ADDED, patient_id="A^B")
    assert ack.code == AckCode.ERROR
    assert [d.condition for d in ack.details] == [ErrorCondition.DATA_TYPE_ERROR]


def test_revise_replaces_the_demographics(feed: Hl7v3Feed, registry: DocumentRegistry) -> None:
    handle(feed, Interaction.PATIENT_ADDED)
    assert handle(feed, Interaction.PATIENT_REVISED).code == AckCode.ACCEPT
    assert demographics(registry, cx("ALPHA-1"))["name"] == "Alpha-Beta^Alan"


def test_revise_of_an_unknown_patient_makes_it_known(
    feed: Hl7v3Feed, registry: DocumentRegistry
) -> None:
    handle(feed, Interaction.PATIENT_REVISED, patient_id="NEW-1")
    assert known(registry, cx("NEW-1"))


# --- merge (ITI TF-2 3.44.4.2.4) ----------------------------------------------------------------


def find_documents(registry: DocumentRegistry, patient_id: str) -> list[str]:
    request = AdhocQueryRequest(
        StoredQuery.FIND_DOCUMENTS,
        {
            QueryParameter.DOC_ENTRY_PATIENT_ID: [[f"'{patient_id}'"]],
            QueryParameter.DOC_ENTRY_STATUS: [[f"('{AvailabilityStatus.APPROVED}')"]],
        },
    )
    with registry.sessions() as session:
        response = execute_stored_query(session, request, StoredQueryConfig())
    assert not response.errors, response.errors
    return [o.entry_uuid for o in response.objects]


def test_merge_is_visible_to_queries_at_once(feed: Hl7v3Feed, registry: DocumentRegistry) -> None:
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-1")
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-2", message_id="MSG-2")
    entry = document_entry(cx("ALPHA-2"))
    assert registry.register(submit(entry, patient=cx("ALPHA-2"))).ok
    ack = handle(feed, Interaction.PATIENTS_MERGED, message_id="MSG-3")
    assert ack.code == AckCode.ACCEPT
    assert find_documents(registry, cx("ALPHA-1")) == [entry.entry_uuid]


def test_subsumed_id_is_no_longer_known(feed: Hl7v3Feed, registry: DocumentRegistry) -> None:
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-1")
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-2")
    handle(feed, Interaction.PATIENTS_MERGED)
    assert not known(registry, cx("ALPHA-2"))
    assert known(registry, cx("ALPHA-1"))


def test_merge_into_an_unknown_patient_is_an_error(
    feed: Hl7v3Feed, registry: DocumentRegistry
) -> None:
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-2")
    ack = handle(feed, Interaction.PATIENTS_MERGED)
    assert ack.code == AckCode.ERROR
    assert [d.condition for d in ack.details] == [ErrorCondition.UNKNOWN_KEY_IDENTIFIER]
    assert known(registry, cx("ALPHA-2"))


def test_merging_twice_is_an_error(feed: Hl7v3Feed) -> None:
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-1")
    handle(feed, Interaction.PATIENT_ADDED, patient_id="ALPHA-2")
    handle(feed, Interaction.PATIENTS_MERGED)
    ack = handle(feed, Interaction.PATIENTS_MERGED)
    assert [d.condition for d in ack.details] == [ErrorCondition.DUPLICATE_KEY_IDENTIFIER]


def test_malformed_message_is_rejected_and_reported(
    feed: Hl7v3Feed, outcomes: list[FeedOutcome]
) -> None:
    elem = message(Interaction.PATIENT_ADDED)
    elem.find(f"{V3}processingCode").set("code", "X")
    ack = parse_acknowledgement(feed.handle(elem))
    assert ack.code == AckCode.REJECT
    assert ack.target_message_id == InstanceIdentifier("1.2.840.114350.1.13.0.1.7.1.1", "MSG-1")
    assert [o.ack_code for o in outcomes] == [AckCode.REJECT]


def test_outcome_names_the_stored_ids(feed: Hl7v3Feed, outcomes: list[FeedOutcome]) -> None:
    handle(feed, Interaction.PATIENT_ADDED)
    assert [(o.interaction, o.patient_ids) for o in outcomes] == [
        (Interaction.PATIENT_ADDED, (cx("ALPHA-1"),))
    ]


# --- over SOAP ----------------------------------------------------------------------------------


def prefixed(elem: etree._Element) -> etree._Element:
    """The message with its HL7 namespace bound to a prefix instead of the default
    namespace (soap.envelope's streaming parser does not take a default namespace in
    the Body yet)."""
    copy = etree.Element(elem.tag, dict(elem.attrib), nsmap={"hl7": NS_HL7})
    copy.text = elem.text
    for child in elem:
        if isinstance(child.tag, str):
            copy.append(prefixed(child))
    return copy


@pytest.fixture
def client(feed: Hl7v3Feed) -> SoapClient:
    service = Service("/xds/registry", patient_feed_operations(feed))
    app = Starlette(routes=build_soap_routes([service], Limits()))
    return SoapClient("http://xdsi.test/xds/registry", transport=httpx.ASGITransport(app=app))


@pytest.mark.parametrize(
    ("action", "interaction"),
    [
        (Action.ITI44_ADD, Interaction.PATIENT_ADDED),
        (Action.ITI44_REVISE, Interaction.PATIENT_REVISED),
    ],
)
async def test_soap_feed_answers_mcci_in000002uv01(
    client: SoapClient, registry: DocumentRegistry, action: str, interaction: Interaction
) -> None:
    reply = await client.call(action, prefixed(message(interaction)), mtom=False)
    assert reply.addressing.action == Action.ITI44_RESPONSE
    assert reply.body.tag == f"{V3}MCCI_IN000002UV01"
    assert parse_acknowledgement(reply.body).code == AckCode.ACCEPT
    assert known(registry, cx("ALPHA-1"))


async def test_soap_body_not_matching_the_action_is_rejected(
    client: SoapClient, registry: DocumentRegistry
) -> None:
    body = prefixed(message(Interaction.PATIENT_ADDED))
    reply = await client.call(Action.ITI44_MERGE, body, mtom=False)
    assert parse_acknowledgement(reply.body).code == AckCode.REJECT
    assert not known(registry, cx("ALPHA-1"))

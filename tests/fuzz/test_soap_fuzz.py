"""ITI-41, ITI-42, ITI-18 and ITI-43 mutated - structure, values, MTOM framing,
encodings, sizes - through the real ASGI application: always a well-formed answer,
never an unhandled exception, nothing stored for a Failure or a Fault."""

from __future__ import annotations

from e2e_support import mtom_request
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from messages import (
    ITI18,
    ITI42,
    REGISTRY,
    REPOSITORY,
    iti18,
    iti41,
    iti41_fixed_cid,
    iti42,
    iti43,
    iti43_envelope,
    simple_content_type,
)
from mutations import (
    Encoding,
    FramingMutation,
    XmlMutation,
    apply_encoding,
    apply_framing,
    apply_xml,
    encodings,
    framing_mutations,
    odd_values,
    xml_mutations,
)

FUZZ = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"


def test_valid_iti41_is_accepted(harness) -> None:
    # the fuzzers mutate this message: unmutated, it succeeds
    answer = harness.exchange(REPOSITORY, *reversed(iti41(harness.patient)))
    assert answer.registry_status == SUCCESS


@FUZZ
@given(mutation=xml_mutations)
def test_iti41_with_mutated_metadata(harness, mutation: XmlMutation) -> None:
    envelope = apply_xml(iti41_fixed_cid(harness.patient), mutation)
    assume(envelope is not None)
    content_type, body = iti41(harness.patient, envelope)
    harness.exchange(REPOSITORY, body, content_type)


@FUZZ
@given(mutation=framing_mutations)
def test_iti41_with_mutated_mtom_framing(harness, mutation: FramingMutation) -> None:
    content_type, body = apply_framing(*iti41(harness.patient), mutation)
    harness.exchange(REPOSITORY, body, content_type)


@FUZZ
@given(mutation=xml_mutations)
def test_iti42_with_mutated_metadata(harness, mutation: XmlMutation) -> None:
    envelope = apply_xml(iti42(harness.patient), mutation)
    assume(envelope is not None)
    harness.exchange(REGISTRY, envelope, simple_content_type(ITI42))


@FUZZ
@given(mutation=xml_mutations)
def test_iti18_with_mutated_query(harness, mutation: XmlMutation) -> None:
    envelope = apply_xml(iti18(harness.patient), mutation)
    assume(envelope is not None)
    harness.exchange(REGISTRY, envelope, simple_content_type(ITI18))


@FUZZ
@given(mutation=xml_mutations, unique_ids=st.lists(odd_values, min_size=0, max_size=3))
def test_iti43_with_mutated_request(harness, mutation: XmlMutation, unique_ids) -> None:
    envelope = apply_xml(iti43_envelope(unique_ids or ["1.2.3"]), mutation)
    assume(envelope is not None)
    content_type, body = mtom_request(envelope, [], "urn:ihe:iti:2007:RetrieveDocumentSet")
    harness.exchange(REPOSITORY, body, content_type)


@FUZZ
@given(mutation=framing_mutations)
def test_iti43_with_mutated_mtom_framing(harness, mutation: FramingMutation) -> None:
    content_type, body = apply_framing(*iti43(["1.2.3.4"]), mutation)
    harness.exchange(REPOSITORY, body, content_type)


@FUZZ
@given(encoding=encodings, which=st.sampled_from(["iti42", "iti18"]))
def test_registry_requests_in_other_encodings(harness, encoding: Encoding, which: str) -> None:
    document = iti42(harness.patient) if which == "iti42" else iti18(harness.patient)
    action = ITI42 if which == "iti42" else ITI18
    body, charset = apply_encoding(document, encoding)
    content_type = f'application/soap+xml; charset={charset}; action="{action}"'
    harness.exchange(REGISTRY, body, content_type)


@settings(FUZZ, max_examples=15)
@given(copies=st.integers(min_value=1, max_value=2000), target=st.integers(0, 10_000))
def test_iti42_with_an_element_repeated_many_times(harness, copies: int, target: int) -> None:
    envelope = iti42(harness.patient)
    for _ in range(min(copies, 12)):  # doubling: up to 4096 copies of one element
        doubled = apply_xml(envelope, XmlMutation("duplicate", target))
        if doubled is None:
            break
        envelope = doubled
    harness.exchange(REGISTRY, envelope, simple_content_type(ITI42))

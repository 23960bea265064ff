"""RAD-69 Retrieve Imaging Document Set requests mutated - study, series and instance
UIDs, repository ids, transfer syntaxes, structure, encodings, MTOM framing - through
the real ASGI application with three instances in its store.

Every answer is a well-formed SOAP 1.2 envelope: a Fault (SOAP or WS-Addressing
problem) or an xdsb:RetrieveDocumentSetResponse (RAD TF-3 4.69.4.2, the ITI-43 response
of ITI TF-2 3.43.4.2) whose status agrees with what it holds (ITI TF-2 3.43.4.2.3),
whose RegistryErrors carry the error codes of ITI TF-3 Table 4.2.4.1-2 for a retrieve,
and whose every DocumentResponse is a stored instance, byte for byte, that was asked
for (RAD TF-3 4.69.5: an errored instance has no DocumentResponse).  After each
example the unmutated request still succeeds: the service keeps serving.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import NS, mtom_request, parse_response, rad69_request
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
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
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)
from soap_answers import FAULT, Answer, well_formed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from dicom_studies import make_instance  # noqa: E402

FUZZ = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
IMAGING_SOURCE = "/xdsi/imaging-source"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
PARTIAL = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
RESPONSE = f"{{{NS['xdsb']}}}RetrieveDocumentSetResponse"
# ITI TF-3 Table 4.2.4.1-2, the codes of a retrieve (ITI-43, and so RAD-69)
RETRIEVE_ERROR_CODES = frozenset(
    {
        "XDSDocumentUniqueIdError",
        "XDSRepositoryError",
        "XDSUnknownRepositoryId",
        "XDSUnknownCommunity",
        "XDSRepositoryBusy",
        "XDSRepositoryOutOfResources",
    }
)


@dataclass(frozen=True)
class Requested:
    """One xdsb:DocumentRequest under its StudyRequest and SeriesRequest."""

    study: str
    series: str
    instance: str
    repository: str


def rad69_envelope(requests: list[Requested], syntaxes: list[str]) -> bytes:
    """RAD TF-3 4.69.4.1.2: one StudyRequest per study, one SeriesRequest per series."""
    return rad69_request(
        "http://xdsi.fuzz/xdsi/imaging-source",
        [(r.study, r.series, r.instance, r.repository) for r in requests],
        syntaxes,
    )


class Imaging:
    """The harness with a small study in the imaging store: what a request may ask."""

    def __init__(
        self,
        harness: Any,
        repository_unique_id: str,
        instances: dict[str, Dataset],
        stored_bytes: dict[str, bytes],
    ) -> None:
        self.harness = harness
        self.repository_unique_id = repository_unique_id
        self.instances = instances  # SOP Instance UID -> as stored
        self.stored_bytes = stored_bytes

    def valid(self) -> list[Requested]:
        return [
            Requested(
                ds.StudyInstanceUID,
                ds.SeriesInstanceUID,
                ds.SOPInstanceUID,
                self.repository_unique_id,
            )
            for ds in self.instances.values()
        ]

    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"Imaging({sorted(self.instances)})"

    def exchange(self, body: bytes, content_type: str, syntaxes: list[str] | None = None) -> Answer:
        """Send a request; ``syntaxes``: the TransferSyntaxUIDs it lists, when known."""
        response = self.harness.post(IMAGING_SOURCE, body, content_type)
        answer = well_formed(response)
        if not answer.is_fault:
            self.check_response(answer, response, syntaxes)
        return answer

    def check_response(
        self, answer: Answer, response: httpx.Response, syntaxes: list[str] | None
    ) -> None:
        assert answer.body.tag == RESPONSE, answer.body.tag
        registry = answer.body.find("rs:RegistryResponse", NS)
        assert registry is not None
        status = registry.get("status")
        errors = list(registry.iter(f"{{{NS['rs']}}}RegistryError"))
        documents = answer.body.findall("xdsb:DocumentResponse", NS)
        assert {e.get("errorCode") for e in errors} <= RETRIEVE_ERROR_CODES, [
            e.get("errorCode") for e in errors
        ]
        # ITI TF-2 3.43.4.2.3: Success all, PartialSuccess some, Failure none
        expected = SUCCESS if not errors else PARTIAL if documents else FAILURE
        assert status == expected, (status, len(errors), len(documents))
        package = parse_response(response.headers["content-type"], response.content)
        for document in documents:
            uid = document.findtext("xdsb:DocumentUniqueId", namespaces=NS)
            assert uid in self.instances, uid
            assert document.findtext("xdsb:RepositoryUniqueId", namespaces=NS) == (
                self.repository_unique_id
            )
            assert document.findtext("xdsb:mimeType", namespaces=NS) == "application/dicom"
            include = document.find("xdsb:Document/xop:Include", NS)
            assert include is not None
            _, data = package.parts[include.get("href", "")[4:]]
            self.check_instance(uid, data, syntaxes)

    def check_instance(self, uid: str, data: bytes, syntaxes: list[str] | None) -> None:
        """As stored, byte for byte, when its syntax was acceptable; else converted to one
        that was listed (RAD TF-3 4.69.4.1.3)."""
        back = dcmread(io.BytesIO(data))
        assert back.SOPInstanceUID == uid
        stored = str(self.instances[uid].file_meta.TransferSyntaxUID)
        listed = [s.strip() for s in syntaxes] if syntaxes is not None else None
        if listed is not None and (not listed or "*" in listed or stored in listed):
            assert data == self.stored_bytes[uid]
        elif listed is not None:
            assert str(back.file_meta.TransferSyntaxUID) in listed

    def still_serving(self) -> None:
        """The unmutated request for one instance succeeds."""
        content_type, body = mtom_request(
            rad69_envelope(self.valid()[:1], [ExplicitVRLittleEndian, RLELossless]), [], RAD69
        )
        answer = self.exchange(body, content_type, [ExplicitVRLittleEndian, RLELossless])
        assert not answer.is_fault and answer.registry_status == SUCCESS


@pytest.fixture(scope="module")
def imaging(harness: Any) -> Imaging:
    wiring = harness.application.imaging
    assert wiring is not None
    store = wiring.source.store
    study, series = generate_uid(), generate_uid()
    datasets = [
        make_instance(study, series, instance_number=n, compressed=(n == 3)) for n in (1, 2, 3)
    ]
    stored = {ds.SOPInstanceUID: store.add(ds) for ds in datasets}
    imaging = Imaging(
        harness,
        harness.application.config.imaging_source.repository_unique_id,
        {ds.SOPInstanceUID: ds for ds in datasets},
        {uid: instance.path.read_bytes() for uid, instance in stored.items()},
    )
    imaging.still_serving()
    return imaging


# --- the mutations -------------------------------------------------------------------------

_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    RLELossless,
    JPEGBaseline8Bit,
    "*",
    "1.2.840.10008.1.2.4.999",
]


@dataclass(frozen=True)
class UidMutation:
    """One DocumentRequest's field replaced: by a UID of another level, one of another
    study or series, an unknown UID or an odd value."""

    index: int
    field: str  # study, series, instance, repository
    value: str


def _uid_values(imaging: Imaging) -> st.SearchStrategy[str]:
    known = [u for ds in imaging.instances.values()
             for u in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)]  # fmt: skip
    return st.one_of(
        st.sampled_from([*known, imaging.repository_unique_id, generate_uid(), "1.2.3"]),
        odd_values,
    )


def _mutated_requests(imaging: Imaging, mutations: list[UidMutation]) -> list[Requested]:
    requests = imaging.valid()
    for m in mutations:
        r = requests[m.index % len(requests)]
        requests[m.index % len(requests)] = Requested(**{**r.__dict__, m.field: m.value})
    return requests


def _xml_safe(text: str) -> bool:
    return all(c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff") for c in text)


@FUZZ
@given(data=st.data())
def test_rad69_with_mutated_uids_and_repository_ids(imaging: Imaging, data: st.DataObject) -> None:
    mutations = data.draw(
        st.lists(
            st.builds(
                UidMutation,
                index=st.integers(0, 2),
                field=st.sampled_from(["study", "series", "instance", "repository"]),
                value=_uid_values(imaging),
            ),
            min_size=1,
            max_size=4,
        )
    )
    assume(all(_xml_safe(m.value) for m in mutations))
    requests = _mutated_requests(imaging, mutations)
    syntaxes = [ExplicitVRLittleEndian]
    content_type, body = mtom_request(rad69_envelope(requests, syntaxes), [], RAD69)
    answer = imaging.exchange(body, content_type, syntaxes)
    assert not answer.is_fault
    errors = {
        e.get("location"): e.get("errorCode")
        for e in answer.body.iter(f"{{{NS['rs']}}}RegistryError")
    }
    for r in requests:  # RAD TF-3 4.69.4.1.3, ITI TF-2 3.43.4.1.3: the code per cause
        stored = imaging.instances.get(r.instance.strip())
        if not r.repository.strip():  # RAD TF-3 4.69.4.1.2: required
            assert errors, r
        elif r.repository != imaging.repository_unique_id:
            assert "XDSUnknownRepositoryId" in errors.values()
        elif stored is None or (stored.StudyInstanceUID, stored.SeriesInstanceUID) != (
            r.study.strip(),
            r.series.strip(),
        ):
            assert errors, r
    imaging.still_serving()


@FUZZ
@given(syntaxes=st.lists(st.one_of(st.sampled_from(_SYNTAXES), odd_values), max_size=4))
def test_rad69_with_mutated_transfer_syntaxes(imaging: Imaging, syntaxes: list[str]) -> None:
    assume(all(_xml_safe(s) for s in syntaxes))
    content_type, body = mtom_request(rad69_envelope(imaging.valid(), syntaxes), [], RAD69)
    answer = imaging.exchange(body, content_type, syntaxes)
    assert not answer.is_fault
    codes = {e.get("errorCode") for e in answer.body.iter(f"{{{NS['rs']}}}RegistryError")}
    # RAD TF-3 4.69.4.1.3: an instance not deliverable in any listed syntax is an error
    assert codes <= {"XDSRepositoryError"}
    imaging.still_serving()


@settings(FUZZ, max_examples=40)
@given(mutation=xml_mutations)
def test_rad69_with_mutated_structure(imaging: Imaging, mutation: XmlMutation) -> None:
    envelope = apply_xml(rad69_envelope(imaging.valid(), [ExplicitVRLittleEndian]), mutation)
    assume(envelope is not None)
    assert envelope is not None
    imaging.exchange(*reversed(mtom_request(envelope, [], RAD69)))
    imaging.still_serving()


@settings(FUZZ, max_examples=40)
@given(mutation=framing_mutations)
def test_rad69_with_mutated_mtom_framing(imaging: Imaging, mutation: FramingMutation) -> None:
    envelope = rad69_envelope(imaging.valid(), [ExplicitVRLittleEndian])
    content_type, body = apply_framing(*mtom_request(envelope, [], RAD69), mutation)
    imaging.exchange(body, content_type)
    imaging.still_serving()


@FUZZ
@given(encoding=encodings, mtom=st.booleans())
def test_rad69_in_other_encodings(imaging: Imaging, encoding: Encoding, mtom: bool) -> None:
    envelope = rad69_envelope(imaging.valid(), [ExplicitVRLittleEndian])
    body, charset = apply_encoding(envelope, encoding)
    if mtom:  # the root part's charset parameter claims the same
        content_type, package = mtom_request(body, [], RAD69)
        package = package.replace(b"charset=UTF-8", f"charset={charset}".encode(), 1)
        answer = imaging.exchange(package, content_type)
    else:
        answer = imaging.exchange(
            body, f'application/soap+xml; charset={charset}; action="{RAD69}"'
        )
    assert answer.is_fault or answer.body.tag == RESPONSE
    imaging.still_serving()


def test_rad69_fault_is_not_a_response(imaging: Imaging) -> None:
    # a request without an Action is a SOAP problem: a Fault, never a 200 response
    content_type, body = mtom_request(b"<not-soap/>", [], RAD69)
    answer = imaging.exchange(body, content_type)
    assert answer.body.tag == FAULT
    imaging.still_serving()

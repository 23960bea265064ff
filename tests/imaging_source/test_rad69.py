"""RAD-69 Retrieve Imaging Document Set (RAD TF-3 4.69) against the local store, on
SQLite and PostgreSQL: per-instance answers, error codes and transfer syntaxes."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import copy
from pathlib import Path

import numpy
import pytest
from dicom_studies import make_instance, make_study
from instance_fixtures import imaging_postgres_engine, index_engine, migrated_sqlite, store
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLossless,
    RLELossless,
    generate_uid,
)

from ebxml.errors import ErrorCode
from ebxml.messages import (
    DocumentRequest,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.vocabulary import ResponseStatus
from imaging_source.instances import InstanceStore
from imaging_source.pacs import LocalSource
from imaging_source.rad69 import (
    DICOM_MIME_TYPE,
    ImagingSourceIdentity,
    retrieve_imaging_document_set,
)
from imaging_source.transcode import Transcoder

OUR_ID = "1.3.6.1.4.1.21367.13.80.110"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.101"
IDENTITY = ImagingSourceIdentity(OUR_ID, HOME)


def pixels(instance_number: int) -> bytes:
    """The native pixel bytes dicom_studies.make_instance writes."""
    return bytes((instance_number * 7 + i) % 256 for i in range(8 * 8 * 2))


def request_for(
    datasets: list[Dataset],
    syntaxes: tuple[str, ...] = (ExplicitVRLittleEndian,),
    repository: str = OUR_ID,
    *,
    study: str | None = None,
    series: str | None = None,
) -> RetrieveImagingDocumentSetRequest:
    """One StudyRequest, a SeriesRequest per series (or all under ``series``)."""
    by_series: dict[str, list[DocumentRequest]] = {}
    for ds in datasets:
        key = series or ds.SeriesInstanceUID
        by_series.setdefault(key, []).append(DocumentRequest(repository, ds.SOPInstanceUID))
    study_uid = study or datasets[0].StudyInstanceUID
    return RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                study_uid, tuple(SeriesRequest(uid, tuple(d)) for uid, d in by_series.items())
            ),
        ),
        syntaxes,
    )


@pytest.fixture
def study(store: InstanceStore) -> list[Dataset]:
    datasets = make_study()
    for ds in datasets:
        store.add(ds)
    return datasets


@pytest.fixture
def transcoder(tmp_path: Path) -> Transcoder:
    return Transcoder(tmp_path / "transcoded", max_bytes=10**6)


def retrieve(
    store: InstanceStore, transcoder: Transcoder, request: RetrieveImagingDocumentSetRequest
):  # noqa: ANN201
    return retrieve_imaging_document_set(
        request, source=LocalSource(store), transcoder=transcoder, identity=IDENTITY
    )


def test_every_instance_of_the_request_is_returned(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    native = [ds for ds in study if ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian]
    response = retrieve(store, transcoder, request_for(native))
    assert response.status is ResponseStatus.SUCCESS and not response.errors
    assert [d.document_unique_id for d in response.documents] == [
        ds.SOPInstanceUID for ds in native
    ]
    for document in response.documents:
        assert document.mime_type == DICOM_MIME_TYPE
        assert document.repository_unique_id == OUR_ID
        stored = store.get(document.document_unique_id)
        assert stored is not None and document.path == stored.path  # as stored, no copy
        assert document.size == stored.path.stat().st_size


def test_unknown_instance_gets_document_unique_id_error_naming_it(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    ghost = make_instance(study[0].StudyInstanceUID, study[0].SeriesInstanceUID)
    response = retrieve(store, transcoder, request_for([study[0], ghost]))
    assert response.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, ghost.SOPInstanceUID)
    ]
    assert [d.document_unique_id for d in response.documents] == [study[0].SOPInstanceUID]


def test_instance_requested_under_another_series_is_unknown(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    ct, mr = study[0], study[3]
    response = retrieve(store, transcoder, request_for([ct, mr], series=ct.SeriesInstanceUID))
    assert response.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, mr.SOPInstanceUID)
    ]


def test_instance_requested_under_another_study_is_unknown(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    response = retrieve(store, transcoder, request_for(study[:1], study=generate_uid()))
    assert response.status is ResponseStatus.FAILURE and not response.documents
    assert [e.code for e in response.errors] == [ErrorCode.XDSDocumentUniqueIdError]


def test_foreign_repository_unique_id_gets_unknown_repository_id(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    response = retrieve(store, transcoder, request_for(study[:1], repository="1.2.3.4"))
    assert response.status is ResponseStatus.FAILURE and not response.documents
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSUnknownRepositoryId, study[0].SOPInstanceUID)
    ]


def test_foreign_home_community_id_gets_unknown_community(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    ds = study[0]
    request = RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                ds.StudyInstanceUID,
                (
                    SeriesRequest(
                        ds.SeriesInstanceUID,
                        (DocumentRequest(OUR_ID, ds.SOPInstanceUID, "urn:oid:1.2.3"),),
                    ),
                ),
            ),
        ),
        (ExplicitVRLittleEndian,),
    )
    response = retrieve(store, transcoder, request)
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownCommunity]


def test_stored_syntax_is_kept_when_requested(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    rle = study[2]
    response = retrieve(
        store, transcoder, request_for([rle], (ExplicitVRLittleEndian, RLELossless))
    )
    [document] = response.documents
    stored = store.get(rle.SOPInstanceUID)
    assert stored is not None and document.path == stored.path


def test_compressed_instance_is_decompressed_to_a_requested_native_syntax(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    rle = study[2]  # instance number 3, RLE Lossless
    response = retrieve(store, transcoder, request_for([rle], (ExplicitVRLittleEndian,)))
    assert response.status is ResponseStatus.SUCCESS
    [document] = response.documents
    got = dcmread(document.path)
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    original = copy.deepcopy(rle)
    original.decompress()
    assert got.PixelData == original.PixelData
    assert got.SOPInstanceUID == rle.SOPInstanceUID


def test_native_instance_is_compressed_when_only_rle_is_requested(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    response = retrieve(store, transcoder, request_for(study[:1], (RLELossless,)))
    [document] = response.documents
    got = dcmread(document.path)
    assert got.file_meta.TransferSyntaxUID == RLELossless
    assert got.SOPInstanceUID == study[0].SOPInstanceUID
    stored = numpy.frombuffer(pixels(1), "<u2") & 0x0FFF  # Bits Stored 12
    assert (got.pixel_array.ravel() == stored).all()


def test_native_instance_is_reencoded_to_implicit_vr(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    response = retrieve(store, transcoder, request_for(study[:1], (ImplicitVRLittleEndian,)))
    [document] = response.documents
    got = dcmread(document.path)
    assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert got.PixelData == pixels(1)


def test_instance_no_plugin_can_decode_gets_repository_error(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    jpeg = make_instance(study[0].StudyInstanceUID, study[0].SeriesInstanceUID, instance_number=9)
    jpeg.file_meta.TransferSyntaxUID = JPEGLossless
    jpeg.PixelData = encapsulate([b"\xff\xd8\xff\xc3not-really-jpeg\xff\xd9"])
    jpeg["PixelData"].VR = "OB"
    store.add(jpeg)
    response = retrieve(store, transcoder, request_for([study[0], jpeg], (ExplicitVRLittleEndian,)))
    assert response.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSRepositoryError, jpeg.SOPInstanceUID)
    ]
    assert [d.document_unique_id for d in response.documents] == [study[0].SOPInstanceUID]


def test_no_transfer_syntax_list_returns_as_stored(
    store: InstanceStore, study: list[Dataset], transcoder: Transcoder
) -> None:
    response = retrieve(store, transcoder, request_for(study[2:3], ()))
    stored = store.get(study[2].SOPInstanceUID)
    assert stored is not None and response.documents[0].path == stored.path


def test_empty_request_is_a_failure(store: InstanceStore, transcoder: Transcoder) -> None:
    response = retrieve(store, transcoder, RetrieveImagingDocumentSetRequest((), ()))
    assert response.status is ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSRepositoryError]

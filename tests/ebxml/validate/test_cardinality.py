"""ITI TF-3 Table 4.3.1-3 as encoded in cardinality.py, cell by cell."""

from __future__ import annotations

import pytest

from ebxml.validate.cardinality import (
    ATTRIBUTES,
    OPTIONALITY,
    Cardinality,
    Column,
    ObjectKind,
    Optionality,
    cardinality,
    column_for,
    optionality,
)
from ebxml.vocabulary import Transaction

DE, SS, FOL = ObjectKind.DOCUMENT_ENTRY, ObjectKind.SUBMISSION_SET, ObjectKind.FOLDER
DS, DR, MS, OD = Column.XDS_DS, Column.XDS_DR, Column.XDR_MS, Column.XDS_OD
R, R2, O, X = Optionality.R, Optionality.R2, Optionality.O, Optionality.X  # noqa: E741


@pytest.mark.parametrize(
    "kind, attribute, column, expected",
    [
        # repository-added attributes: optional from the source, required from the repository
        (DE, "hash", DS, O),
        (DE, "hash", DR, R),
        (DE, "size", DS, O),
        (DE, "size", DR, R),
        (DE, "repositoryUniqueId", DS, O),
        (DE, "repositoryUniqueId", DR, R),
        (DE, "repositoryUniqueId", OD, R),
        # on-demand entries have no hash, size or creationTime
        (DE, "hash", OD, X),
        (DE, "size", OD, X),
        (DE, "creationTime", OD, X),
        (DE, "creationTime", DR, R),
        # coded attributes: required in XDS, required-if-known for metadata-limited
        (DE, "classCode", DS, R),
        (DE, "classCode", MS, R2),
        (DE, "confidentialityCode", DR, R),
        (DE, "sourcePatientId", DR, R),
        (DE, "languageCode", DS, R),
        (DE, "mimeType", MS, R),
        (DE, "uniqueId", MS, R),
        (DE, "patientId", MS, R2),
        (DE, "author", DR, R2),
        (DE, "serviceStartTime", DR, R2),
        (DE, "eventCodeList", DR, O),
        (DE, "limitedMetadata", DS, X),
        (DE, "limitedMetadata", DR, X),
        (DE, "limitedMetadata", MS, R),
        (SS, "sourceId", DR, R),
        (SS, "submissionTime", MS, R),
        (SS, "contentTypeCode", DR, R),
        (SS, "contentTypeCode", MS, R2),
        (SS, "intendedRecipient", MS, R2),
        (SS, "limitedMetadata", DR, X),
        (FOL, "codeList", DR, R),
        (FOL, "lastUpdateTime", DR, O),
        (FOL, "uniqueId", MS, R),
    ],
)
def test_table_cell(kind, attribute, column, expected):
    assert optionality(kind, attribute, column) is expected


def test_every_row_has_every_column():
    for row in OPTIONALITY.values():
        assert set(row) == set(Column)


def test_every_row_can_be_read_from_the_model():
    for kind, attribute in OPTIONALITY:
        assert attribute in ATTRIBUTES[kind], (kind, attribute)


@pytest.mark.parametrize(
    "transaction, limited, expected",
    [
        (Transaction.ITI41, False, DS),
        (Transaction.RAD68, False, DS),
        (Transaction.ITI41, True, MS),
        (Transaction.ITI42, False, DR),
        (Transaction.ITI42, True, DR),
        (Transaction.ITI57, False, DR),
        (Transaction.ITI61, False, OD),
    ],
)
def test_column_for_transaction(transaction, limited, expected):
    assert column_for(transaction, limited_metadata=limited) is expected


@pytest.mark.parametrize(
    "kind, attribute, column, expected",
    [
        (DE, "classCode", DR, Cardinality(1, 1)),
        (DE, "confidentialityCode", DR, Cardinality(1, None)),
        (DE, "eventCodeList", DR, Cardinality(0, None)),
        (DE, "hash", DS, Cardinality(0, 1)),
        (DE, "hash", OD, Cardinality(0, 0)),
        (DE, "author", DR, Cardinality(0, None)),
        (FOL, "codeList", DS, Cardinality(1, None)),
        (SS, "limitedMetadata", MS, Cardinality(1, 1)),
    ],
)
def test_cardinality_from_cell_and_multiplicity(kind, attribute, column, expected):
    assert cardinality(kind, attribute, column) == expected


def test_cardinality_allows():
    assert Cardinality(1, 1).allows(1)
    assert not Cardinality(1, 1).allows(0)
    assert not Cardinality(0, 0).allows(1)
    assert Cardinality(1, None).allows(7)


def test_attribute_outside_the_table_is_optional():
    assert optionality(DE, "authorPerson", DR) is O

"""imaging_source_0003: indexed values that an earlier xdsi stored as the text of
pydicom's MultiValue are rewritten backslash-joined (PS3.5 6.4); nothing else changes.
On SQLite and PostgreSQL, from a real index at imaging_source_0002."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from instance_fixtures import postgres_database
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from sqlalchemy import Engine, text

from imaging_source import instances
from imaging_source.instances import make_engine

MIGRATION = (
    Path(instances.__file__).parent / "migrations/versions/imaging_source_0003_multi_valued_text.py"
)


def _migration():  # noqa: ANN202 - the revision module
    spec = importlib.util.spec_from_file_location("imaging_source_0003", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")
        yield made
        made.dispose()
        return
    with postgres_database("xdsi_instances_test") as url:
        made = make_engine(url)
        yield made
        made.dispose()


# column -> (stored before, expected after)
ROWS: list[dict[str, tuple[str, str]]] = [
    {"modality": ("['CT', 'PT']", "CT\\PT"), "accession_number": ("['A1', 'B2']", "A1\\B2")},
    {"patient_name": ("[Doe^John, Roe^Jane]", "Doe^John\\Roe^Jane")},
    {"study_description": ("[\"O'Brien\", 'Head']", "O'Brien\\Head")},
    # not a MultiValue's text: left as it is
    {"study_description": ("[Research] head CT", "[Research] head CT")},
    {"modality": ("['CT']", "['CT']")},  # one value: never a MultiValue's text
    {"study_date": ("['202001", "['202001")},  # cut at its column's length: its end is lost
    {"patient_name": ("Doe^John", "Doe^John"), "modality": ("MR", "MR")},
]


def _insert(engine: Engine, number: int, values: dict[str, str]) -> None:
    row = {
        "sop_instance_uid": f"1.2.3.{number}",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "study_instance_uid": "1.2.3",
        "series_instance_uid": "1.2.3.0",
        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
        **dict.fromkeys(_migration().COLUMNS, ""),
        "file_path": f"f{number}",
        "size": 1,
        "sha1": "0" * 40,
        "received": datetime.now(UTC),
        **values,
    }
    columns = ", ".join(row)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO imaging_instance ({columns}) VALUES ({', '.join(f':{c}' for c in row)})"
            ),
            row,
        )


def test_multi_valued_texts_are_rewritten_backslash_joined(engine: Engine) -> None:
    instances.upgrade(engine, "imaging_source_0002")
    for number, row in enumerate(ROWS):
        _insert(engine, number, {column: before for column, (before, _) in row.items()})
    instances.upgrade(engine)
    with engine.connect() as connection:
        for number, row in enumerate(ROWS):
            stored = connection.execute(
                text(f"SELECT {', '.join(row)} FROM imaging_instance WHERE sop_instance_uid = :u"),
                {"u": f"1.2.3.{number}"},
            ).one()
            assert dict(zip(row, stored, strict=True)) == {
                c: after for c, (_, after) in row.items()
            }


@pytest.mark.parametrize(
    ("value", "person_name"),
    [
        (MultiValue(str, ["CT", "PT"]), False),
        (MultiValue(str, ["it's", 'a "b"', "c", "é"]), False),
        (MultiValue(PersonName, ["Doe^John", "Roe^Jane^^Dr"]), True),
    ],
)
def test_the_text_of_a_multivalue_gives_its_values_back(
    value: MultiValue, person_name: bool
) -> None:
    # exactly what the earlier index stored: str(MultiValue) (pydicom's __str__)
    assert _migration().multi_valued(str(value), person_name) == [str(v) for v in value]


@pytest.mark.parametrize(
    "stored", ["", "CT", "[]", "['CT']", "['CT', 1]", "[CT, PT]", "['CT', 'P", "[__import__('os')]"]
)
def test_other_texts_are_not_taken_for_several_values(stored: str) -> None:
    assert _migration().multi_valued(stored, person_name=False) is None

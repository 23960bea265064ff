"""imaging_instance: indexed values of several values rewritten as DICOM writes them

Before this revision an indexed attribute of several values (VM > 1, which none of them
should have) was stored as the text of pydicom's MultiValue - ``['CT', 'PT']``, or
``[Doe^John, Roe^Jane]`` for person names - instead of backslash-joined (PS3.5 6.4),
as the index now stores them.  A value that is all such text is rewritten; one cut at
its column's length lost its end and is left as it is (counted in the log).

Revision ID: imaging_source_0003
Revises: imaging_source_0002
Create Date: 2026-12-01 11:40:00.000000

"""

import ast
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision = "imaging_source_0003"
down_revision: str | Sequence[str] | None = "imaging_source_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# the indexed string columns that are not UIDs (a UID is checked on the way in)
COLUMNS = (
    "patient_id",
    "issuer_of_patient_id",
    "patient_name",
    "patient_birth_date",
    "patient_sex",
    "study_date",
    "study_time",
    "accession_number",
    "study_id",
    "study_description",
    "referring_physician_name",
    "modality",
    "series_description",
    "body_part_examined",
)
PERSON_NAMES = frozenset({"patient_name", "referring_physician_name"})


def multi_valued(text: str, person_name: bool) -> list[str] | None:
    """The values of ``text`` if it is all the text pydicom gives a MultiValue of two
    values or more (``MultiValue.__str__``: each str value quoted as Python quotes it, a
    person name bare; joined by ", " inside brackets); None otherwise."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    if person_name:
        values = text[1:-1].split(", ")
        return values if len(values) > 1 and all(values) else None
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(parsed, list) and len(parsed) > 1 and all(isinstance(v, str) for v in parsed):
        return parsed
    return None


def upgrade() -> None:
    """Rewrite whole MultiValue texts backslash-joined."""
    table = sa.table("imaging_instance", sa.column("id", sa.Integer), *map(sa.column, COLUMNS))
    listed = sa.or_(*(table.c[name].like("[%") for name in COLUMNS))
    connection = op.get_bind()
    changes: list[tuple[int, dict[str, str]]] = []
    left = 0
    for row in connection.execute(sa.select(table).where(listed)).mappings():
        fixed: dict[str, str] = {}
        for name in COLUMNS:
            text = row[name]
            if not text.startswith("["):
                continue
            values = multi_valued(text, name in PERSON_NAMES)
            if values is None:
                left += 1
                continue
            fixed[name] = "\\".join(values)  # shorter than the text: fits its column
        if fixed:
            changes.append((row["id"], fixed))
    for row_id, fixed in changes:
        connection.execute(table.update().where(table.c.id == row_id).values(fixed))
    if changes or left:
        log.warning(
            "imaging_instance: %d rows of several values rewritten backslash-joined; %d "
            "values beginning with '[' left as they are (cut at their column's length, or "
            "not of several values)",
            len(changes),
            left,
        )


def downgrade() -> None:
    """Nothing to undo: the earlier text was a defect, not a format."""

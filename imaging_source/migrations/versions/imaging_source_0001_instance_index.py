"""imaging_instance: the Imaging Document Source instance index

Revision ID: imaging_source_0001
Revises:
Create Date: 2026-11-30 00:27:27.578755

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision = "imaging_source_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("imaging_source",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "imaging_instance",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=324), nullable=False),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=False),
        sa.Column("patient_sex", sa.String(length=16), nullable=False),
        sa.Column("study_date", sa.String(length=8), nullable=False),
        sa.Column("study_time", sa.String(length=16), nullable=False),
        sa.Column("accession_number", sa.String(length=16), nullable=False),
        sa.Column("study_id", sa.String(length=16), nullable=False),
        sa.Column("study_description", sa.String(length=64), nullable=False),
        sa.Column("referring_physician_name", sa.String(length=324), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=64), nullable=False),
        sa.Column("body_part_examined", sa.String(length=16), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_instance")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_imaging_instance_sop_instance_uid")),
    )
    with op.batch_alter_table("imaging_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_accession_number"), ["accession_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_modality"), ["modality"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_series_instance_uid"),
            ["series_instance_uid"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_study_date"), ["study_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_study_instance_uid_series_instance_uid"),
            ["study_instance_uid", "series_instance_uid"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("imaging_instance", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_imaging_instance_study_instance_uid_series_instance_uid")
        )
        batch_op.drop_index(batch_op.f("ix_imaging_instance_study_date"))
        batch_op.drop_index(batch_op.f("ix_imaging_instance_series_instance_uid"))
        batch_op.drop_index(batch_op.f("ix_imaging_instance_patient_id"))
        batch_op.drop_index(batch_op.f("ix_imaging_instance_modality"))
        batch_op.drop_index(batch_op.f("ix_imaging_instance_accession_number"))

    op.drop_table("imaging_instance")

"""Alembic environment for the Imaging Document Source's instance index only (see ``imaging_source.instances``)."""

from __future__ import annotations

from imaging_source.instances import ImagingSourceBase
from storage.alembic_env import run

run(ImagingSourceBase.metadata, "alembic_version_imaging_source")

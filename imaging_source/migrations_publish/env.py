"""Alembic environment for the publishing journal only (see ``imaging_source.published``)."""

from __future__ import annotations

from imaging_source.published import PublishBase
from storage.alembic_env import run

run(PublishBase.metadata, "alembic_version_kos")

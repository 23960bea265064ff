"""Alembic environment for the repository's tables only (see ``repository.db``)."""

from __future__ import annotations

from repository.tables import Base
from storage.alembic_env import run

run(Base.metadata, "alembic_version_repository")

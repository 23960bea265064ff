"""Alembic environment for the registry's tables only (see ``registry.db``)."""

from __future__ import annotations

from registry.tables import RegistryBase
from storage.alembic_env import run

run(RegistryBase.metadata, "alembic_version_registry")

"""The repository's database: engine, sessions and its own Alembic migrations.

The repository keeps its own Alembic environment and version table
(``alembic_version_repository``) so it can share a database with the registry
without either touching the other's tables.  Nothing is created at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage import migrations as storage_migrations
from storage.engine import make_engine as storage_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_repository"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``storage.engine``: SQLite in WAL, pooled connections
    checked before use)."""
    return storage_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    return storage_migrations.alembic_config(MIGRATIONS_DIR, VERSION_TABLE, engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the repository's tables to ``revision``."""
    storage_migrations.upgrade(MIGRATIONS_DIR, VERSION_TABLE, engine, revision)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "alembic_config",
    "make_engine",
    "session_factory",
    "upgrade",
]

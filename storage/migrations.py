"""Alembic configuration for one actor's migrations folder and version table, run on
the engine the actor was given (``storage.alembic_env`` reads it back)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def alembic_config(migrations_dir: Path, version_table: str, engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("version_table", version_table)
    config.attributes["engine"] = engine
    return config


def upgrade(migrations_dir: Path, version_table: str, engine: Engine, revision: str) -> None:
    command.upgrade(alembic_config(migrations_dir, version_table, engine), revision)


__all__ = ["alembic_config", "upgrade"]

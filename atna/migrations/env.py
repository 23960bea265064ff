"""Alembic environment for the audit spool's tables only (see ``atna.spool``)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine, create_engine

from atna.spool import VERSION_TABLE, SpoolBase

config = context.config


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # the database may hold the registry's or repository's tables too: never diff them
    return not (type_ == "table" and reflected and name not in SpoolBase.metadata.tables)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=SpoolBase.metadata,
        version_table=config.get_main_option("version_table") or VERSION_TABLE,
        render_as_batch=True,
        include_object=include_object,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

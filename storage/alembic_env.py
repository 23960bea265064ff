"""The body of every actor's Alembic ``env.py``: migrate one metadata's tables, in
batch mode (SQLite), with the actor's own version table, never diffing against the
tables other actors keep in the same database."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine, MetaData, create_engine


def run(metadata: MetaData, default_version_table: str) -> None:
    """Run the migrations Alembic asked for (online, on the engine ``*.db.upgrade``
    passes in ``config.attributes["engine"]``, or offline to SQL)."""
    config = context.config
    version_table = config.get_main_option("version_table") or default_version_table

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        return not (type_ == "table" and reflected and name not in metadata.tables)

    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": version_table,
        "render_as_batch": True,
        "include_object": include_object,
    }
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


__all__ = ["run"]

"""Alembic environment for the Imaging Document Source's instance index only (see ``imaging_source.instances``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from imaging_source.instances import ImagingSourceBase as Base

config = context.config
VERSION_TABLE = config.get_main_option("version_table") or "alembic_version_imaging_source"


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    # the database may hold the registry's and the repository's tables too: never diff against them
    return not (type_ == "table" and reflected and name not in Base.metadata.tables)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        render_as_batch=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=True,
            include_object=_include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

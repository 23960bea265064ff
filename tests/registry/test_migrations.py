"""The committed Alembic revisions build exactly the schema of registry/tables.py."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from registry.db import VERSION_TABLE, alembic_config, make_engine, upgrade
from registry.tables import RegistryBase


def _diff(engine) -> list:  # noqa: ANN001
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return compare_metadata(context, RegistryBase.metadata)


def test_upgrade_to_head_matches_metadata(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        assert [d for d in _diff(engine)] == []
    finally:
        engine.dispose()


def test_upgrade_uses_own_version_table(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert VERSION_TABLE in tables
        assert "alembic_version" not in tables
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        upgrade(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_every_registry_table(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "base")
        tables = set(inspect(engine).get_table_names())
        assert tables.isdisjoint(RegistryBase.metadata.tables)
    finally:
        engine.dispose()


def _xml_compression(engine) -> set[str]:  # noqa: ANN001
    with engine.connect() as connection:
        return set(
            connection.exec_driver_sql(
                "SELECT attcompression FROM pg_attribute WHERE attname = 'xml'"
                " AND attrelid = ANY(ARRAY['submission_set', 'folder', 'document_entry',"
                " 'association']::regclass[])"
            ).scalars()
        )


def test_stored_xml_is_compressed_with_lz4_where_postgresql_has_it(
    pg_database_factory,  # noqa: ANN001
) -> None:
    engine = make_engine(pg_database_factory())
    try:
        upgrade(engine)
        with engine.connect() as connection:
            lz4 = connection.exec_driver_sql(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            ).scalar()
        assert _xml_compression(engine) == ({"l"} if lz4 else {""})
        command.downgrade(alembic_config(engine), "registry_0002")
        assert _xml_compression(engine) == ({"p"} if lz4 else {""})
    finally:
        engine.dispose()

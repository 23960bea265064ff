"""Alembic environment of the repository index (version table alembic_version_repository)."""

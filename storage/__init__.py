"""Database plumbing every actor shares: its Alembic environment.

Each actor (registry, repository, imaging source, audit spool) owns its tables and
migrations and keeps its own Alembic version table, so all of them can live in one
database; this package holds only what their migration environments have in common.
"""

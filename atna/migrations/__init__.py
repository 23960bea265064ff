"""Alembic environment of the audit spool (see ``atna.spool``)."""

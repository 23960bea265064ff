"""Alembic environment for the audit spool's tables only (see ``atna.spool``)."""

from __future__ import annotations

from atna.spool import VERSION_TABLE, SpoolBase
from storage.alembic_env import run

run(SpoolBase.metadata, VERSION_TABLE)

"""The XDS Document Registry actor.

- ``tables``: the relational schema; ``db``: engines and Alembic migrations;
  ``uow``: one unit of work per XDS transaction, retried when it lost a race.
- ``patients``: the patient ids known from the Patient Identity Feed, and merges.
- ``register``: ITI-42 against stored state; ``lifecycle``: RPLC, XFRM, APND, signs.
- ``service``: ``DocumentRegistry``, the transport-independent actor API.

Nothing is imported here, so that importing one module does not pull in the rest.
"""

"""A pooled PostgreSQL connection checked before use without a round trip.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: one round trip
and a few hundred microseconds of driver work before each transaction's own
statements - on a short ITI-18 it was a tenth of the server's time.  A connection a
database restart or an administrator ended is visible without asking: the server
sends its ``FATAL`` ErrorResponse (SQLSTATE 57P01 admin_shutdown, 57P02, 57P03) and
closes the socket, so the idle connection's socket becomes readable.  On a connection
that is idle between transactions the protocol has nothing else to deliver (xdsi
does not ``LISTEN``; a ParameterStatus follows only the session's own ``SET``), so
any readable data, end of file or error on the socket means the connection is no
longer usable.  The check is one ``poll`` with a zero timeout; a connection that
fails it is discarded and the pool hands out another (``DisconnectionError`` from
the ``checkout`` event, SQLAlchemy "Disconnect Handling - Pessimistic").

What it cannot see, a peer that vanished without closing the socket (a network
partition), ``SELECT 1`` would only find after the TCP timeout as well; the statement
then fails, SQLAlchemy recognises the disconnect and invalidates the pool's older
connections, and the transaction is answered as a failure.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

_UNUSABLE = select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLNVAL


def connection_ended(dbapi_connection: Any) -> bool:
    """True when an idle psycopg connection has been closed or ended by the server."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        fd = dbapi_connection.pgconn.socket
    except Exception:  # the libpq connection is gone
        return True
    poller = select.poll()
    poller.register(fd, _UNUSABLE)
    return bool(poller.poll(0))


def _check_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if connection_ended(dbapi_connection):
        raise DisconnectionError("the database server ended this pooled connection")


def watch_liveness(engine: Engine) -> bool:
    """Check ``engine``'s pooled connections on checkout without a round trip; False
    (nothing attached) for a driver other than psycopg, which keeps pre-ping."""
    if engine.dialect.driver != "psycopg":
        return False
    event.listen(engine, "checkout", _check_on_checkout)
    return True


__all__ = ["connection_ended", "watch_liveness"]

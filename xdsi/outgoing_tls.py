"""ITI-19 on the connections xdsi opens: the client contexts of a Secure Node.

A Secure Node presents its identity to the node it connects to and authenticates it
(ITI TF-2 3.19.1).  :func:`node_client_context` is the client side for a service xdsi
reaches as a node: this node's certificate offered when ``[tls]`` is on, the service
authenticated against the CAs given, and a failed node authentication reported to a
callback (``atna.node_authentication.reporting_context``; the composition root audits
it as a Security Alert).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

from atna.node_authentication import OnTlsFailure, reporting_context
from xdsi.config import Config, ConfigError
from xdsi.tls import TlsConfigError, client_context


def node_client_context(
    config: Config,
    ca: Sequence[str],
    *,
    where: str,
    scheme: str,
    service: str | None = None,
    on_failure: OnTlsFailure | None = None,
) -> ssl.SSLContext:
    """A client context trusting ``ca`` (none: the system's store), offering this node's
    certificate when ``[tls]`` is on, reporting failed authentications to
    ``on_failure``; a file it cannot read is a ConfigError of ``where``."""
    node = config.tls
    try:
        context = client_context(
            Path(node.cert) if node.enabled else None,
            Path(node.key) if node.enabled and node.key else None,
            tuple(Path(path) for path in ca),
        )
    except TlsConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return reporting_context(context, on_failure, scheme=scheme, service=service)


def registry_ssl_context(
    config: Config, on_failure: OnTlsFailure | None = None
) -> ssl.SSLContext | None:
    """TLS from the repository to an https ``[repository] registry_url`` (ITI-42, the
    ITI-18 recovery), between Secure Nodes: with ``[tls]`` on, this node's certificate
    offered and the registry authenticated against ``[tls] ca`` and ``trusted_certs``.
    None (``[tls]`` off, or no https URL): the system's CAs, no certificate."""
    url, node = config.repository.registry_url, config.tls
    if not url.startswith("https://") or not node.enabled:
        return None
    return node_client_context(
        config,
        (*node.ca, *node.trusted_certs),
        where="[tls]",
        scheme="https",
        service=url,
        on_failure=on_failure,
    )


__all__ = ["node_client_context", "registry_ssl_context"]

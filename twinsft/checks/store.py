"""Whether ZenML's store answers before a command relies on it.

A client stays logged in to a server after that server stops: the local one (`zenml login --local`,
`make dashboard`) after a reboot, a remote one out of reach. ZenML then ends every command in a page of
urllib3 traceback; `run.py` says instead, in one line, which server and what brings the client back.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from twinsft.errors import UserError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_store_reachable() -> None:
    """Connect ZenML's client to its server, when it has one (raises UserError when the server does not answer)."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    store = GlobalConfiguration().store_configuration
    if store.type.value != "rest":  # a SQL store: nothing that can stop answering after a login
        return
    check_local_server_listens(store.url)
    try:
        Client().zen_store  # noqa: B018 - the first use connects (GET /api/v1/info)
    except RuntimeError as exc:  # RestZenStore: "Error connecting to URL ..."
        refused = "refused" in str(exc).lower()
        raise UserError(unreachable_server_line(store.url, "connection refused" if refused else "no answer")) from None


def check_local_server_listens(url: str) -> None:
    """A server on this machine either listens or refuses at once: say so now, not after ZenML's half minute
    of retries (a remote server keeps those: its network may be slow or behind a proxy)."""
    parsed = urlparse(url)
    if parsed.hostname not in LOOPBACK:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=5).close()
    except OSError as exc:
        raise UserError(unreachable_server_line(url, exc.strerror or type(exc).__name__)) from None


def unreachable_server_line(url: str, cause: str) -> str:
    if urlparse(url).hostname in LOOPBACK:
        fix = ("`zenml login --local` starts the local server again (`make dashboard` does too), "
               "or `zenml logout` goes back to the local store")
    else:
        fix = f"check the URL and the network, `zenml login {url}` again, or `zenml logout` for the local store"
    return f"this client is logged in to the ZenML server {url}, which does not answer ({cause.lower()}): {fix}"

"""A client logged in to a ZenML server that no longer answers gets one line naming the server and what
brings it back, exit status 2, before any model loads: at once for a server on this machine (a local
server that stopped), after ZenML's own retries for a remote one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import types

import pytest

from tests.helpers import ROOT, free_port
from twinsft.checks import store as store_checks
from twinsft.errors import UserError


@pytest.fixture
def stale_login(tmp_path):
    """A ZenML client config left logged in to a local server that has stopped (nothing listens on its port)."""
    url = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "zenml"
    config.mkdir()
    (config / "config.yaml").write_text(f"store:\n  type: rest\n  url: {url}\nversion: 0.98.0\n")
    return url, {**os.environ, "ZENML_CONFIG_PATH": str(config)}


@pytest.mark.parametrize("command", [["--config", "configs/demo.yaml"], ["summary", "some-run"],
                                     ["serve", "--config", "configs/demo.yaml", "--stop"]])
def test_run_py_names_the_stopped_local_server(stale_login, command):
    url, env = stale_login
    done = subprocess.run([sys.executable, "run.py", *command], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: this client is logged in to the ZenML server {url}, which does not answer (connection refused): "
        "`zenml login --local` starts the local server again (`make dashboard` does too), or `zenml logout` goes "
        "back to the local store"
    ]


def test_a_listening_local_server_passes_the_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        store_checks.check_local_server_listens(f"http://127.0.0.1:{server.getsockname()[1]}")


def test_a_remote_server_is_left_to_zenml_retries(monkeypatch):
    """No probe for a remote host (a proxy or a slow network may stand between); ZenML's connection error after its
    retries becomes the line, with the remote fix."""
    def no_probe(*_args, **_kwargs):
        raise AssertionError("a remote server must not be probed directly")

    monkeypatch.setattr(store_checks.socket, "create_connection", no_probe)
    url = "https://zenml.example.com"
    config = types.SimpleNamespace(store_configuration=types.SimpleNamespace(type=types.SimpleNamespace(value="rest"),
                                                                             url=url))

    class UnreachableClient:
        @property
        def zen_store(self):
            raise RuntimeError(f"Error connecting to URL '{url}': Max retries exceeded (Read timed out.)")

    monkeypatch.setattr("zenml.config.global_config.GlobalConfiguration", lambda: config)
    monkeypatch.setattr("zenml.client.Client", UnreachableClient)
    with pytest.raises(UserError) as raised:
        store_checks.check_store_reachable()
    assert str(raised.value) == (
        f"this client is logged in to the ZenML server {url}, which does not answer (no answer): check the URL and "
        f"the network, `zenml login {url}` again, or `zenml logout` for the local store"
    )


def test_the_session_store_passes():
    store_checks.check_store_reachable()  # the test session's own SQLite store

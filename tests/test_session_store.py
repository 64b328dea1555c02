"""Every test talks to the session's own ZenML store, never the machine's: a step or pipeline defined when a
test module is imported asks ZenML's client for its store before any fixture runs (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path


def test_zenml_uses_the_sessions_own_store():
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    session = Path(os.environ["ZENML_CONFIG_PATH"]).resolve()
    assert Path(GlobalConfiguration().config_directory).resolve() == session
    assert session in Path(Client().zen_store.config.url.removeprefix("sqlite:///")).resolve().parents

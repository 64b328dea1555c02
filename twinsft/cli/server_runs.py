"""`run.py snapshot NAME --config ...` and `run.py rerun NAME [--set section.key=value ...] [--wait]`.

A snapshot is the compiled pipeline (steps, parameters, pinned revisions, the build's images, the stack) stored
on the ZenML server under a name. `rerun` asks the server to run it (`POST /api/v1/pipeline_snapshots/{id}/runs`,
what the Pro dashboard's "Run" button calls); cached steps stay cached. A server runs snapshots only when its
`ZENML_SERVER_WORKLOAD_MANAGER_IMPLEMENTATION_SOURCE` names a workload manager and its stack has no local
component (docs/server-reruns.md). Every error is one `error:` line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from twinsft.checks.store import check_store_reachable
from twinsft.cli.config_file import deep_merge, parse_parameters
from twinsft.errors import ConfigError, UserError

# The sections that reach the steps unchanged as step parameters: a rerun may change these. `data` is resolved
# into fingerprints when the snapshot is made, and the model's revision pinned then; change those with a new
# snapshot.
RERUN_SECTIONS = ("lora", "split", "training", "generation", "export", "promotion")
WAIT_POLL_SECONDS = 2.0


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set training.learning_rate=2e-4` items as a nested mapping (values read as YAML scalars)."""
    updates: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set '{item}': expected SECTION.KEY=VALUE, e.g. training.learning_rate=2e-4")
        if parts[0] not in RERUN_SECTIONS:
            raise ConfigError(
                f"--set {key}: a rerun changes only {', '.join(RERUN_SECTIONS)}; "
                f"'{parts[0]}' is fixed in the snapshot (make a new one with `run.py snapshot`)"
            )
        node = updates
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = set_value(raw)
    return updates


def set_value(raw: str) -> Any:
    """A --set value: a number where it reads as one (YAML 1.1 leaves `2e-4` a string), else YAML."""
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return yaml.safe_load(raw) if raw.strip() else raw


def step_overrides(snapshot: Any, updates: dict[str, Any]) -> dict[str, Any]:
    """The run configuration's `steps:` block: each step that takes a changed section gets the section with the
    change. The snapshot's own parameters plus the change are validated against the schema first, so a misspelt
    key is refused here with the same line `run.py` gives."""
    # The pipeline's parameters as stored: the sections the configuration left out are None (their defaults).
    base = {k: v for k, v in (snapshot.pipeline_configuration.parameters or {}).items() if v is not None}
    parse_parameters(deep_merge(base, updates), source="--set")
    steps: dict[str, Any] = {}
    for name, step in snapshot.step_configurations.items():
        params = {section: deep_merge(step.config.parameters[section], change)
                  for section, change in updates.items() if isinstance(step.config.parameters.get(section), dict)}
        if params:
            steps[name] = {"parameters": params}
    if not steps:
        raise ConfigError(f"--set: no step of snapshot '{snapshot.name}' takes {', '.join(updates)}")
    return steps


def connected_server() -> Any:
    """The client's ZenML store, when it is a server (raises UserError otherwise)."""
    from zenml.client import Client

    check_store_reachable()
    store = Client().zen_store
    if store.type.value != "rest":
        raise UserError("no ZenML server: this client uses a local store; `zenml login <server URL>` "
                        "(a server that runs snapshots: docs/server-reruns.md)")
    return Client()


def server_runnable_error(snapshot: Any) -> str | None:
    """Why the server cannot run `snapshot` (one line), or None."""
    if snapshot.runnable:
        return None
    from zenml.pipelines.run_utils import validate_stack_is_runnable_from_server

    stack = snapshot.stack
    reason = "its build has no images in a container registry"
    if stack is None:
        reason = "its stack was deleted"
    else:
        from zenml.client import Client

        try:
            validate_stack_is_runnable_from_server(zen_store=Client().zen_store, stack=stack)
        except ValueError as exc:
            reason = str(exc).rstrip(".").removeprefix("Unable to run pipeline from the server on ")
    return (f"snapshot '{snapshot.name}' cannot run on the server: {reason}; the stack needs a remote orchestrator "
            "and artifact store and a container registry (docs/server-reruns.md)")


def snapshot_command(argv: list[str], config_dir: Path, checked_config: Callable[..., tuple[Path, Any]]) -> int:
    """`run.py snapshot NAME --config FILE [--stack STACK]`: the same checks and overlays as a run
    (`checked_config` is run.py's: the file ZenML reads, after every check that loads no model)."""
    parser = argparse.ArgumentParser(prog="run.py snapshot", description=(
        "Create a named snapshot of the pipeline from a run configuration, for `run.py rerun` or the dashboard."))
    parser.add_argument("name", help="the snapshot's name")
    parser.add_argument("--config", required=True, action="append", help="run configuration (repeat to merge)")
    parser.add_argument("--stack", help="merge configs/stacks/STACK.yaml last (e.g. ssh)")
    parser.add_argument("--replace", action="store_true", help="replace a snapshot of the same name")
    args = parser.parse_args(argv)
    try:
        path, _cfg = checked_config(args.config, config_dir, args.stack)
        connected_server()
        from twinsft.pipelines import sft_pipeline

        snapshot = sft_pipeline.with_options(config_path=str(path)).create_snapshot(
            name=args.name, replace=args.replace or None)
        if (problem := server_runnable_error(snapshot)) is not None:
            raise UserError(problem)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # ZenML: e.g. a snapshot of that name exists
        print(f"error: snapshot '{args.name}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 2
    print(f"Snapshot {snapshot.name} ({snapshot.id}) of pipeline llm_sft on stack "
          f"{snapshot.stack.name if snapshot.stack else '?'}; run it with `python run.py rerun {snapshot.name}`")
    return 0


def start_rerun(name: str, updates: dict[str, Any]) -> Any:
    """Ask the server to run snapshot `name` with `updates` (parsed --set values); returns the new run."""
    client = connected_server()
    try:
        snapshot = client.get_snapshot(name, allow_prefix_match=False)
    except KeyError:
        raise UserError(f"no snapshot named '{name}' on the server; list them with `zenml pipeline snapshot list`, "
                        "create one with `run.py snapshot NAME --config FILE`") from None
    if (problem := server_runnable_error(snapshot)) is not None:
        raise UserError(problem)
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
    from zenml.models import PipelineSnapshotRunRequest

    config = PipelineRunConfiguration(steps=step_overrides(snapshot, updates)) if updates else None
    try:
        return client.zen_store.run_snapshot(snapshot.id, PipelineSnapshotRunRequest(run_configuration=config))
    except RuntimeError as exc:  # ZenML: "Running a snapshot is not supported for this server."
        raise UserError(f"the server does not run snapshots ({exc}); start it with "
                        "ZENML_SERVER_WORKLOAD_MANAGER_IMPLEMENTATION_SOURCE and ZENML_SERVER_URL set "
                        "(docs/server-reruns.md)") from None


def wait_for_run(run_id: Any, timeout: float | None = None) -> Any:
    from zenml.client import Client

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = Client().get_pipeline_run(run_id)
        if run.status.is_finished or (deadline is not None and time.monotonic() > deadline):
            return run
        time.sleep(WAIT_POLL_SECONDS)


def rerun_command(argv: list[str]) -> int:
    """`run.py rerun NAME [--set SECTION.KEY=VALUE ...] [--wait]`."""
    parser = argparse.ArgumentParser(prog="run.py rerun", description=(
        "Run a snapshot on the ZenML server (as the dashboard's Run button does); cached steps stay cached."))
    parser.add_argument("name", help="the snapshot's name (`run.py snapshot NAME ...` made it)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help=f"change a parameter for this run (sections: {', '.join(RERUN_SECTIONS)})")
    parser.add_argument("--wait", action="store_true", help="wait for the run and print its summary")
    args = parser.parse_args(argv)
    try:
        updates = parse_set(args.set)
        run = start_rerun(args.name, updates)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from twinsft.cli.runs import dashboard_url, print_or_refuse

    url = dashboard_url(run)
    print(f"Run {run.name} started on the server from snapshot {args.name}" + (f"; dashboard: {url}" if url else ""))
    if not args.wait:
        return 0
    return print_or_refuse(wait_for_run(run.id))

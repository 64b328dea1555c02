"""Where a step runs: in the client's own process (ZenML's in-process `local` orchestrator, no step operator),
or somewhere else (a container, a step operator, a remote orchestrator's pod), where the client's folders and
GPU do not exist.

One rule, `runs_on_client`, answers for both views: the client's before the run (`run.py` reads the active
stack and the step operators the configuration names) and a running step's own (it reads the stack and the
environment ZenML's step-operator entrypoint sets). The views must agree: preflight checks this machine only
where the steps will run on it, and `push_merged` writes the client's `export.output_dir` only there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepFacts:
    """What the checks and the command line need to know of one step of a pipeline (its table lists them)."""

    name: str
    gpu: bool = False  # runs on the GPU machine: a step operator may carry it, and it checks that machine first
    reads_model: bool = False  # reads the base model's files (tokenizer or weights): a gated model needs HF_TOKEN
    writes_comet: bool = False  # logs to the run's Comet experiment: needs COMET_API_KEY unless offline
    # Pipeline parameters that the steps before this one read: `--from-step` reuses their outputs, so it warns
    # when these changed since the reused run.
    upstream_parameters: tuple[str, ...] = ()
    cached: bool = True  # False: never from the cache (it reads state outside its inputs), also on a full rerun


def runs_on_client(orchestrator_flavor: str, on_step_operator: bool) -> bool:
    """True when a step runs in the process that submitted the run: ZenML's `local` orchestrator runs steps in
    that process unless a step operator takes the step elsewhere; every other orchestrator runs them elsewhere
    (`local_docker` in containers, the rest on other machines)."""
    return orchestrator_flavor == "local" and not on_step_operator


def this_step_runs_on_client() -> bool:
    """Inside a running step: does it run in the client's process? ZenML's step-operator entrypoint sets
    ZENML_STEP_OPERATOR in the process it starts."""
    from zenml.client import Client
    from zenml.constants import ENV_ZENML_STEP_OPERATOR, handle_bool_env_var

    on_step_operator = handle_bool_env_var(ENV_ZENML_STEP_OPERATOR, False)
    return runs_on_client(Client().active_stack.orchestrator.flavor, on_step_operator)

"""Where a run's steps execute (read from the active ZenML stack and the run configuration), and what a
run whose steps execute elsewhere needs from the client's side.

The steps run on this machine when the active orchestrator is ZenML's in-process `local` one and no GPU
step names a step operator: then preflight checks this machine (CUDA, bitsandbytes, tokens, folders).
Otherwise they run in containers, pods or VMs, and preflight checks instead that
- the stack's settings in the configuration belong to components the active stack has (ZenML would only
  warn and run the GPU steps without them), and name only settings those components know;
- a step operator named on a GPU step exists in the stack;
- the steps can reach the artifact store: a local one only when no component runs steps on another host
  (`local_docker` mounts it into its containers);
- a ZenML server is connected where a component runs steps on another host (they cannot reach this
  machine's SQLite store);
- every secret the configuration names exists, and HF_TOKEN / COMET_API_KEY are keys of secrets that
  reach each step that reads them.
The GPU steps repeat this machine's checks in their pod (`twinsft.checks.machine`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twinsft.checks.gated_models import is_gated_family
from twinsft.checks.placement import StepFacts, runs_on_client
from twinsft.checks.store import check_store_reachable
from twinsft.config import RunConfig
from twinsft.errors import ConfigError
from twinsft.tracking import COMET

HF_TOKEN, COMET_API_KEY = "HF_TOKEN", "COMET_API_KEY"


@dataclass(frozen=True)
class Placement:
    """The active stack, the pipeline's steps, and the step operator each GPU step runs on (only those that
    name one)."""

    stack: Any  # zenml.stack.Stack
    steps: Sequence[StepFacts]
    step_operators: Mapping[str, Any]

    def runs_on_client(self, step: str) -> bool:
        return runs_on_client(self.stack.orchestrator.flavor, step in self.step_operators)

    @property
    def on_this_machine(self) -> bool:
        """Every step runs in this process, so this machine's checks (GPU, packages, tokens, folders) apply: the
        orchestrator runs steps here and no step is on a step operator (decided by the stack alone, so a caller
        that names no steps still gets the stack's answer)."""
        return runs_on_client(self.stack.orchestrator.flavor, on_step_operator=bool(self.step_operators))

    @property
    def remote_components(self) -> list[Any]:
        """Components that run steps on another host (ZenML's `is_remote`)."""
        components = [self.stack.orchestrator, *self.step_operators.values()]
        return [c for c in components if c.config.is_remote]


def step_config(raw: Mapping[str, Any], step: str) -> Mapping[str, Any]:
    return ((raw.get("steps") or {}).get(step)) or {}


def locate_steps(raw: Mapping[str, Any], label: str, steps: Sequence[StepFacts]) -> Placement:
    """The active stack, and the step operator of each GPU step that names one (raises ConfigError)."""
    from zenml.client import Client

    check_store_reachable()
    stack = Client().active_stack
    operators = {}
    for step in (s.name for s in steps if s.gpu):
        chosen = step_config(raw, step).get("step_operator")
        if chosen is None or chosen is False:
            continue
        operator = stack.step_operator if chosen is True else stack.step_operators.get(str(chosen))
        if operator is None:
            have = ", ".join(sorted(stack.step_operators)) or "none"
            raise ConfigError(
                f"{label}: steps.{step}.step_operator {chosen!r}: the active stack '{stack.name}' has no such step "
                f"operator (it has: {have}); add one to the stack or remove the line"
            )
        operators[step] = operator
    return Placement(stack=stack, steps=steps, step_operators=operators)


def _component_settings(raw: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    from zenml.utils.settings_utils import is_stack_component_setting_key

    found = [(f"settings.{k}", k, v) for k, v in (raw.get("settings") or {}).items()]
    for step, conf in (raw.get("steps") or {}).items():
        found += [(f"steps.{step}.settings.{k}", k, v) for k, v in ((conf or {}).get("settings") or {}).items()]
    return [(where, key, value) for where, key, value in found if is_stack_component_setting_key(key)]


def _matching_components(stack: Any, key: str) -> list[Any]:
    """The stack's components a settings key names: `orchestrator` (the stack's one), `orchestrator.<flavor>`
    or `orchestrator:<name>` (ZenML's three forms)."""
    from zenml.enums import StackComponentType

    match = re.fullmatch(r"([a-z_]+)(?:([.:])(.+))?", key)
    assert match  # is_stack_component_setting_key said so
    kind, by, selector = match.groups()
    components = list(stack.get_components_by_type(StackComponentType(kind)))
    if by is None:
        return components[:1]
    return [c for c in components if (c.flavor if by == "." else c.name) == selector]


def check_settings_match_stack(raw: Mapping[str, Any], label: str, stack: Any) -> None:
    """Settings for components the stack lacks, or keys those components do not know, are errors here:
    ZenML would warn, drop them and run (a GPU step on a CPU machine, say)."""
    for where, key, value in _component_settings(raw):
        matches = _matching_components(stack, key)
        if not matches:
            kind = re.split(r"[.:]", key)[0]
            have = ", ".join(f"'{c.name}' ({c.flavor})" for c in stack.all_components if c.type.value == kind)
            raise ConfigError(
                f"{label}: {where} is for a component the active stack '{stack.name}' does not have (its {kind}: "
                f"{have or 'none'}); activate the stack it was written for (`zenml stack set ...`) or use the "
                "overlay for yours"
            )
        component = matches[0]
        if not isinstance(value, Mapping):
            continue
        settings_class = component.settings_class
        known = set(settings_class.model_fields) if settings_class is not None else set()
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"{label}: {where}: {', '.join(unknown)} is not a setting of the {component.flavor} "
                f"{component.type.value} '{component.name}'; check the spelling, or use the overlay for your stack"
            )


def check_artifact_store(placement: Placement) -> None:
    store = placement.stack.artifact_store
    remote = placement.remote_components
    if store.config.is_local and remote:
        runner = remote[0]
        raise ConfigError(
            f"the active stack '{placement.stack.name}' keeps artifacts in the local artifact store '{store.name}' "
            f"({store.path}), which steps on the {runner.flavor} {runner.type.value} '{runner.name}' cannot reach; "
            "register a remote artifact store (s3://, gs://, az://, ...) in the stack"
        )


def server_is_local() -> bool:
    """True when this client talks to a local SQLite store or a local server: nothing another host reaches."""
    from zenml.client import Client

    return Client().zen_store.is_local_store()


def check_server(placement: Placement) -> None:
    remote = placement.remote_components
    if remote and server_is_local():
        runner = remote[0]
        raise ConfigError(
            f"the {runner.flavor} {runner.type.value} '{runner.name}' runs steps on other machines, which need a "
            "ZenML server to report to; this client uses a local store. Deploy a ZenML server and "
            "`zenml login <its URL>`, then register the stack there"
        )


def named_secrets(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """Secret -> where the configuration names it (`secrets`, `steps.<step>.secrets`)."""
    places: dict[str, list[str]] = {}
    for secret in raw.get("secrets") or []:
        places.setdefault(str(secret), []).append("secrets")
    for step, conf in (raw.get("steps") or {}).items():
        for secret in (conf or {}).get("secrets") or []:
            places.setdefault(str(secret), []).append(f"steps.{step}.secrets")
    return places


def secret_keys(raw: Mapping[str, Any], label: str) -> dict[str, set[str]]:
    """Each named secret's keys; raises ConfigError naming the first secret that does not exist."""
    from zenml.client import Client

    client, keys = Client(), {}
    for name, places in named_secrets(raw).items():
        try:
            secret = client.get_secret(name)
        except (KeyError, ValueError):
            raise ConfigError(
                f"{label}: {places[0]} names the ZenML secret '{name}', which does not exist; create it "
                f"(`zenml secret create {name} --HF_TOKEN=...`) or remove it"
            ) from None
        keys[name] = set(secret.values)
    return keys


def keys_reaching(step: str, raw: Mapping[str, Any], keys: Mapping[str, set[str]], stack: Any) -> set[str]:
    """Environment variables a step gets from ZenML secrets: the run's, the step's and the stack's."""
    names = [str(s) for s in (raw.get("secrets") or [])] + [str(s) for s in step_config(raw, step).get("secrets") or []]
    reached = set().union(*(keys.get(n, set()) for n in names))
    from zenml.client import Client

    for secret in [*stack.secrets, *(s for c in stack.all_components for s in c.secrets)]:
        try:
            reached |= set(Client().get_secret(secret).values)
        except (KeyError, ValueError):
            continue  # ZenML skips it too (with a warning) when it sets the step's environment
    return reached


def _environment(raw: Mapping[str, Any], step: str) -> dict[str, Any]:
    return {**(raw.get("environment") or {}), **(step_config(raw, step).get("environment") or {})}


def check_tokens(cfg: RunConfig, raw: Mapping[str, Any], label: str, placement: Placement,
                 keys: Mapping[str, set[str]]) -> None:
    """HF_TOKEN reaches every step that reads a gated model (and the push); COMET_API_KEY reaches the Comet steps."""
    stack = placement.stack
    model_steps = tuple(s.name for s in placement.steps if s.reads_model)
    comet_steps = tuple(s.name for s in placement.steps if s.writes_comet)
    needs: list[tuple[str, tuple[str, ...], str]] = []
    if not cfg.model.gguf_file and is_gated_family(cfg.model.name):
        needs.append((HF_TOKEN, model_steps, f"model.name '{cfg.model.name}' is gated on the Hub"))
    if cfg.export.push:
        needs.append((HF_TOKEN, ("push_merged",), "export.push is on"))
    tracker = stack.experiment_tracker
    if COMET in cfg.training.report_to and not (tracker is not None and tracker.flavor == "comet"):
        offline = all(str(_environment(raw, s).get("COMET_MODE", "")).lower() == "offline" for s in comet_steps)
        if not offline:
            needs.append((COMET_API_KEY, comet_steps, "training.report_to has comet_ml"))
    for variable, steps, why in needs:
        missing = [s for s in steps if variable not in keys_reaching(s, raw, keys, stack)]
        if missing:
            raise ConfigError(
                f"{label}: {why} but no ZenML secret with a {variable} key reaches {', '.join(missing)} on "
                f"the stack '{stack.name}'; `zenml secret create <name> --{variable}=...` and list it under "
                "the top-level `secrets:`"
            )


def check_stack(cfg: RunConfig, raw: Mapping[str, Any], label: str, steps: Sequence[StepFacts]) -> Placement:
    """The checks that depend on the active stack; returns where the pipeline's `steps` run (raises ConfigError).

    Named secrets must exist wherever the steps run (ZenML's compiler stops with a traceback otherwise);
    the rest only matters when they run elsewhere.
    """
    placement = locate_steps(raw, label, steps)
    check_settings_match_stack(raw, label, placement.stack)
    keys = secret_keys(raw, label)
    if placement.on_this_machine:
        return placement
    check_artifact_store(placement)
    check_server(placement)
    check_tokens(cfg, raw, label, placement, keys)
    return placement

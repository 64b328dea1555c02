"""Where a step runs: in the client's own process (the local orchestrator), or somewhere else (a container, a
step operator, a remote orchestrator's pod), where the client's folders do not exist."""

from __future__ import annotations


def runs_in_client_process() -> bool:
    """True when this step runs in the process that submitted the run (local orchestrator, no step operator)."""
    from zenml.client import Client
    from zenml.constants import ENV_ZENML_STEP_OPERATOR, handle_bool_env_var

    if handle_bool_env_var(ENV_ZENML_STEP_OPERATOR, False):
        return False
    return Client().active_stack.orchestrator.flavor == "local"

"""A test orchestrator that behaves like a remote, asynchronous one seen from the client: it accepts the run and
returns at once, and nothing runs here (the run stays `provisioning`, as a run that a cluster has queued)."""

from __future__ import annotations

from typing import Any

from zenml.enums import ExecutionMode
from zenml.orchestrators import BaseOrchestrator, BaseOrchestratorConfig, BaseOrchestratorFlavor


class QueuedOrchestrator(BaseOrchestrator):
    @property
    def is_synchronous(self) -> bool:
        return False

    @property
    def supported_execution_modes(self) -> list[ExecutionMode]:
        return list(ExecutionMode)

    def get_orchestrator_run_id(self) -> str:
        return "queued"

    def submit_pipeline(self, snapshot: Any, stack: Any, base_environment: Any, step_environments: Any,
                        placeholder_run: Any = None) -> None:
        return None  # submitted; no wait_for_completion: the client does not wait


class QueuedOrchestratorFlavor(BaseOrchestratorFlavor):
    @property
    def name(self) -> str:
        return "twinsft_queued_test"

    @property
    def config_class(self) -> type[BaseOrchestratorConfig]:
        return BaseOrchestratorConfig

    @property
    def implementation_class(self) -> type[QueuedOrchestrator]:
        return QueuedOrchestrator

"""Test-only stack component flavors that say they run remotely, so preflight's remote mode can be driven
from the test's own ZenML store without a cloud SDK. Nothing runs on them: preflight only reads their
configuration (`is_remote`, `is_local`)."""

from zenml.artifact_stores.local_artifact_store import LocalArtifactStoreConfig, LocalArtifactStoreFlavor
from zenml.orchestrators.local.local_orchestrator import LocalOrchestratorConfig, LocalOrchestratorFlavor


class RemoteTestOrchestratorConfig(LocalOrchestratorConfig):
    @property
    def is_remote(self) -> bool:
        return True

    @property
    def is_local(self) -> bool:
        return False


class RemoteTestOrchestratorFlavor(LocalOrchestratorFlavor):
    """Like a Kubernetes or SageMaker orchestrator as far as preflight can tell: steps run on other hosts."""

    @property
    def name(self) -> str:
        return "test_remote"

    @property
    def config_class(self) -> type[RemoteTestOrchestratorConfig]:
        return RemoteTestOrchestratorConfig


class RemoteTestArtifactStoreConfig(LocalArtifactStoreConfig):
    @property
    def is_local(self) -> bool:
        return False


class RemoteTestArtifactStoreFlavor(LocalArtifactStoreFlavor):
    """An artifact store that says other hosts reach it (like s3:// or gs://)."""

    @property
    def name(self) -> str:
        return "test_remote_store"

    @property
    def config_class(self) -> type[RemoteTestArtifactStoreConfig]:
        return RemoteTestArtifactStoreConfig

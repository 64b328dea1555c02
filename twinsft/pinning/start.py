"""Which SFT artifact a DPO run starts from, pinned when the run is submitted: the artifact version (an input of the
DPO steps, so a new SFT result reruns them) and where it came from (recorded on the DPO model version)."""

from __future__ import annotations

from typing import Any

from twinsft.config import SFT_PIPELINE, StartSpec
from twinsft.errors import ConfigError

# The SFT step that writes each artifact a DPO run can start from.
PRODUCER = {"merged_model": "push_merged", "lora_adapter": "train_sft"}


def _from_run(client: Any, start: StartSpec) -> Any:
    try:
        run = client.get_pipeline_run(start.run)
    except (KeyError, ValueError):
        raise ConfigError(f"start.run: no single pipeline run named '{start.run}'; list them with "
                          "`zenml pipeline runs list`") from None
    step = run.steps.get(PRODUCER[start.artifact])
    outputs = step.outputs.get(start.artifact) if step is not None else None
    if not outputs:
        raise ConfigError(f"start.run: run {run.name} has no {start.artifact} (it is not a finished {SFT_PIPELINE} "
                          "run); pick another run")
    return outputs[0]


def _from_model_version(client: Any, start: StartSpec) -> Any:
    # The list API: inside a pipeline definition `get_model_version` returns a lazy placeholder (see
    # data.sources.artifact.find_version), and the version is resolved while the pipeline is built.
    wanted = start.model_version
    filters: dict[str, Any] = {}
    if wanted not in (None, "latest"):
        filters = {"number": int(wanted)} if str(wanted).isdigit() else {"name": wanted}
    found = client.list_model_versions(model=start.zenml_model, sort_by="desc:number", size=1, **filters)
    if not found.items:
        raise ConfigError(f"start: no version '{wanted or 'latest'}' of ZenML Model '{start.zenml_model}'; list them "
                          "with `zenml model version list`")
    version = found.items[0]
    artifact = version.get_artifact(start.artifact)
    if artifact is None:
        raise ConfigError(f"start: version {version.name} of ZenML Model '{start.zenml_model}' has no "
                          f"{start.artifact}; run the SFT pipeline for it first")
    return artifact, {"sft_model": start.zenml_model, "sft_model_version": str(version.name),
                      "sft_model_version_number": version.number}


def _latest(client: Any, start: StartSpec) -> Any:
    found = client.list_artifact_versions(name=start.artifact, sort_by="desc:created", size=1)
    if not found.items:
        raise ConfigError(f"start: no {start.artifact} artifact in this ZenML store; run the SFT pipeline first "
                          "(`python run.py --config lora.yaml`, or `make demo` for the demo)")
    return found.items[0]


def resolve_start(start: StartSpec) -> tuple[Any, dict[str, Any]]:
    """The artifact version DPO starts from and a record of it: the artifact's id and version, the SFT run that made
    it, and that run's ZenML Model version (name and number)."""
    from zenml.client import Client

    client = Client()
    found: dict[str, Any] = {}
    if start.run is not None:
        artifact = _from_run(client, start)
    elif start.zenml_model is not None:
        artifact, found = _from_model_version(client, start)
    else:
        artifact = _latest(client, start)
    info: dict[str, Any] = {"sft_artifact": start.artifact, "sft_artifact_id": str(artifact.id),
                            "sft_artifact_version": str(artifact.version), **found}
    run_id = getattr(artifact, "producer_pipeline_run_id", None)
    if run_id is not None:
        run = client.get_pipeline_run(run_id)
        info["sft_run"] = run.name
        if run.model_version is not None:
            info["sft_model"] = run.model_version.model.name
            info["sft_model_version"] = str(run.model_version.name)
            info["sft_model_version_number"] = run.model_version.number
    return artifact, info

"""The ZenML Model a run trains: one model version per run, carrying its held-out losses.

The Model is named by the run configuration's top-level `model:` block (ZenML's own key; see
README). ZenML links every output of the run to the version (the datasets, `lora_adapter`,
`train_report`, `smoke_generation`, `evaluation`, `merged_model`), also on a fully cached run. The
metrics are ours to add: `train_sft` and `smoke_generate` log them when they run, and `record_on_model`
copies them from the training report and the evaluation when those steps came from the cache (a cached
step does not run, so it logs nothing). It also records where the merged model is: the `merged_model`
artifact's id and URI in the artifact store, and `export.output_uri` when the run copied it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twinsft.training.report import TrainReport

TRACKER_KEYS = ("comet_experiment_key", "comet_experiment_url", "comet_mode")


def model_version_metadata(report: TrainReport, tracking: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report's summary, every held-out evaluation, the mean train loss; the Comet link."""
    return {
        **report.summary(),
        "eval_losses": {str(p.step): p.loss for p in report.eval_losses},
        "train_loss": report.train_loss,
        **{k: v for k, v in (tracking or {}).items() if k in TRACKER_KEYS},
    }


def merged_model_pointer(run: Any) -> dict[str, Any]:
    """The merged model's artifact version (id, URI in the artifact store) and its export.output_uri copy."""
    outputs = run.steps["push_merged"].outputs
    artifact = outputs["merged_model"][0]
    pointer = {"merged_model_artifact_id": str(artifact.id), "merged_model_uri": artifact.uri}
    output_uri = artifact.run_metadata.get("output_uri")
    if output_uri:
        pointer["merged_model_output_uri"] = output_uri
    return pointer


def record_on_model(run: Any) -> None:
    """Give a finished run's model version the metrics that `train_sft` and `smoke_generate` did not log
    (they were cached or skipped)."""
    version = getattr(run, "model_version", None)
    if version is None:
        return
    from zenml import log_metadata

    logged = version.run_metadata
    if "eval_loss_after" not in logged:
        artifact = run.steps["train_sft"].outputs["train_report"][0]
        log_metadata(model_version_metadata(artifact.load(), artifact.run_metadata), model_version_id=version.id)
    if "merged_model_uri" not in logged:
        log_metadata(merged_model_pointer(run), model_version_id=version.id)
    evaluation = run.steps["smoke_generate"].outputs.get("evaluation")
    if "eval_samples" not in logged and evaluation:  # a replay may reuse a smoke_generate made before it existed
        log_metadata(evaluation[0].load().summary(), model_version_id=version.id)

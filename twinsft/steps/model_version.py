"""The ZenML Model a run trains: one model version per run, carrying its held-out losses.

The Model is named by the run configuration's top-level `model:` block (ZenML's own key; see
README). ZenML links every output of the run to the version (the datasets, `lora_adapter`,
`train_report`, `smoke_generation`, `merged_model`), also on a fully cached run. The metrics are
ours to add: `train_sft` logs them when it trains, and `record_on_model` copies them from the
training report when `train_sft` came from the cache (a cached step does not run, so it logs nothing).
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


def record_on_model(run: Any) -> None:
    """Give a finished run's model version its metrics when `train_sft` did not (it was cached or skipped)."""
    version = getattr(run, "model_version", None)
    if version is None or "eval_loss_after" in version.run_metadata:
        return
    from zenml import log_metadata

    artifact = run.steps["train_sft"].outputs["train_report"][0]
    log_metadata(model_version_metadata(artifact.load(), artifact.run_metadata), model_version_id=version.id)

"""Artifacts stored before the stage layout still load: ZenML imports the materializer and data type by
the paths it recorded, and the old paths (`twinsft.materializers`, `twinsft.visuals`, ...) re-export them."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from twinsft.export import ExportResult
from twinsft.steps.dataset_materializer import DatasetMaterializer
from twinsft.steps.visualizations import GenerationMaterializer, SmokeResponse, TrainReportMaterializer
from twinsft.training.report import LossPoint, TrainReport

REPORT = TrainReport(backend="trl", mode="lora", precision="fp32", device="cpu", eval_loss_before=3.6,
                     eval_loss_after=2.1, train_loss=2.5, train_losses=[LossPoint(step=1, loss=2.5)], steps=1,
                     train_tokens=10, train_runtime_s=1.0, tokens_per_s=10.0, peak_memory_gib=1.0,
                     memory_kind="cpu_peak_rss", trainable_params=1, total_params=2)
EXPORT = ExportResult(local_dir="/models/merged", dtype="bfloat16", merge_max_logit_diff=1e-6, verified_tokens=8)

# What runs stored before the layout change recorded: (object, materializer, old materializer path,
# old data-type path or None where the data type's path did not change).
OLD_RECORDS = {
    "dataset": (Dataset.from_dict({"instruction": ["a", "b"], "output": ["c", "d"]}), DatasetMaterializer,
                "twinsft.materializers.DatasetMaterializer", None),
    "report": (REPORT, TrainReportMaterializer, "twinsft.visuals.TrainReportMaterializer",
               "twinsft.training.report.TrainReport"),
    "generation": (SmokeResponse("Hi there.", "Say hi.", True, 3), GenerationMaterializer,
                   "twinsft.visuals.GenerationMaterializer", "twinsft.visuals.SmokeResponse"),
    "export": (EXPORT, None, None, "twinsft.export.ExportResult"),
}


def record_old_paths(version_id, materializer: str | None, data_type: str | None) -> None:
    """Rewrite the stored sources of an artifact version as an older twinsft would have written them."""
    from sqlalchemy import text
    from zenml.client import Client

    store = Client().zen_store
    with store.engine.begin() as conn:
        row = conn.execute(text("SELECT materializer, data_type FROM artifact_version WHERE id = :id"),
                           {"id": version_id.hex}).one()
        updates = {}
        for column, path, stored in (("materializer", materializer, row[0]), ("data_type", data_type, row[1])):
            if path is None:
                continue
            source = json.loads(stored)
            source["module"], source["attribute"] = path.rsplit(".", 1)
            updates[column] = json.dumps(source)
        for column, value in updates.items():
            conn.execute(text(f"UPDATE artifact_version SET {column} = :v WHERE id = :id"),
                         {"v": value, "id": version_id.hex})


@pytest.mark.parametrize("kind", sorted(OLD_RECORDS))
def test_artifacts_recorded_with_old_paths_load_through_zenml(kind):
    from zenml import save_artifact
    from zenml.client import Client

    data, materializer, old_materializer, old_type = OLD_RECORDS[kind]
    saved = save_artifact(data, name=f"old-layout-{kind}", materializer=materializer)
    record_old_paths(saved.id, old_materializer, old_type)

    version = Client().get_artifact_version(saved.id)
    if old_materializer:
        assert f"{version.materializer.module}.{version.materializer.attribute}" == old_materializer
    if old_type:
        assert f"{version.data_type.module}.{version.data_type.attribute}" == old_type
    loaded = version.load()
    if kind == "dataset":
        assert loaded.to_dict() == data.to_dict()
    elif kind == "generation":
        assert loaded == "Hi there."
    else:
        assert loaded == data

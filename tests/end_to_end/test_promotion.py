"""Promotion in the pipeline: the first run of a ZenML Model is staged on its held-out evidence; a second run
with the learning rate lowered tenfold is evaluated on the same rows, loses to the staged version and is not
promoted, with the reason in the step's output, on the version and in the summary."""

from __future__ import annotations

from uuid import uuid4

import pytest
import yaml

from tests.helpers import statuses, tiny_parameters
from twinsft.promotion.registry import stage_holder

pytestmark = pytest.mark.pipeline


def run_with(tmp_path, parameters: dict, model: str, name: str):
    from pipelines import sft_pipeline

    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": model}, "parameters": parameters}))
    return sft_pipeline.with_options(config_path=str(config))()


def test_staged_on_evidence_and_a_worse_rerun_is_refused(tmp_path, tiny_model_dir, data_files, capsys):
    from twinsft.cli.summary import print_summary

    model = f"promotion-e2e-{uuid4().hex[:8]}"
    parameters = tiny_parameters(tiny_model_dir, *data_files, tmp_path, max_steps=8, learning_rate=2e-2)
    first = run_with(tmp_path, parameters, model, "first")
    assert statuses(first)["promote"] == "completed"
    decision = first.steps["promote"].outputs["promotion"][0]
    assert decision.run_metadata["promoted"] is True, decision.run_metadata["decision"]
    assert stage_holder(model, "staging").id == first.model_version.id

    parameters["training"]["learning_rate"] = 2e-3  # tenfold lower: the held-out rows are the same
    second = run_with(tmp_path, parameters, model, "second")
    status = statuses(second)
    assert status["split"] == "cached" and status["train_sft"] == "completed" and status["promote"] == "completed"
    refused = second.steps["promote"].outputs["promotion"][0].load()
    assert not refused.promoted and refused.incumbent == first.model_version.name
    assert [check.name for check in refused.failed][:1] == ["beats_stage"]
    assert "on the same 4 rows" in refused.line()
    assert stage_holder(model, "staging").id == first.model_version.id
    from zenml.client import Client

    recorded = Client().get_model_version(model, second.model_version.id).run_metadata
    assert recorded["promotion_promoted"] is False and recorded["promotion_decision"] == refused.line()
    print_summary(second)
    assert f"Promotion: {refused.line()}" in capsys.readouterr().out

"""Seeing a run: Comet offline archive, the ZenML model version, visualizations, the summary, --from-step.

One tiny pipeline run with Comet offline (plus a cached rerun) serves all the checks below.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import GENERAL_ROWS, STEPS, TWIN_ROWS, all_cached, tiny_parameters, write_jsonl

pytestmark = pytest.mark.pipeline

MODEL_NAME = "twinsft-observability-test"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """(first run, cached rerun, config path, comet dir): comet_ml offline, a named ZenML model."""
    from pipelines import sft_pipeline
    from twinsft.steps.model_version import record_on_model

    base = tmp_path_factory.mktemp("observe")
    comet_dir = base / "comet"
    patch = pytest.MonkeyPatch()
    patch.setenv("COMET_MODE", "offline")
    patch.setenv("COMET_OFFLINE_DIRECTORY", str(comet_dir))
    patch.delenv("COMET_API_KEY", raising=False)
    # Rows of its own: the session's store is shared, and other tests expect their first run to be uncached.
    twin, general = write_jsonl(base / "twin.jsonl", TWIN_ROWS[:20]), write_jsonl(base / "general.jsonl", GENERAL_ROWS)
    params = tiny_parameters(tiny_model_dir, twin, general, base, report_to=["comet_ml"], logging_steps=1)
    config = base / "run.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": MODEL_NAME}, "parameters": params}))
    try:
        first = sft_pipeline.with_options(config_path=str(config))()
        second = sft_pipeline.with_options(config_path=str(config))()
        record_on_model(second)  # what run.py does after every run
        yield first, second, config, comet_dir
    finally:
        patch.undo()


def fresh(run):
    from zenml.client import Client

    return Client().get_pipeline_run(run.id)


def archive_messages(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return [json.loads(line) for line in archive.read("messages.json").decode().splitlines() if line.strip()]


def test_comet_offline_archive_has_parameters_metrics_and_generation(runs):
    first, _, _, comet_dir = runs
    first = fresh(first)
    meta = first.steps["train_sft"].outputs["train_report"][0].run_metadata
    key = meta["comet_experiment_key"]
    assert meta["comet_mode"] == "offline"
    assert first.steps["train_sft"].outputs["lora_adapter"][0].run_metadata["comet_experiment_key"] == key

    archives = sorted(comet_dir.glob(f"{key}-*.zip"))
    assert len(archives) == 2  # training, then the smoke generation appended to the same experiment
    messages = [m for a in archives for m in archive_messages(a)]
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
              for m in messages if m["type"] == "parameter_msg"}
    assert params["training.learning_rate"] == 5e-3 and params["lora.r"] == 4 and params["training.max_steps"] == 2
    metrics: dict[str, dict[int, float]] = {}
    for m in messages:
        if m["type"] == "metric_msg":
            metric = m["payload"]["metric"]
            metrics.setdefault(metric["metricName"], {})[metric["step"]] = metric["metricValue"]
    assert set(metrics["loss"]) == {1, 2} and set(metrics["learning_rate"]) == {1, 2}
    assert all(v > 0 for v in metrics["tokens_per_s"].values())
    report = first.steps["train_sft"].outputs["train_report"][0].load()
    assert metrics["eval_loss"][0] == pytest.approx(report.eval_loss_before)
    assert metrics["eval_loss_after"][2] == pytest.approx(report.eval_loss_after)
    generation = first.steps["smoke_generate"].outputs["smoke_generation"][0].load()
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["smoke_response"] == generation and others["smoke_instruction"] == "Give me a tip about topic 3."
    evaluation = first.steps["smoke_generate"].outputs["evaluation"][0].load()
    for key, value in evaluation.summary().items():  # base vs tuned, into the same experiment
        assert next(iter(metrics[key].values())) == pytest.approx(value), key


def test_model_version_links_outputs_and_carries_eval_losses(runs):
    from zenml.client import Client

    first, second, _, _ = runs
    client = Client()
    expected = {"raw_dataset", "dataset_card", "sft_dataset", "train_dataset", "test_dataset", "lora_adapter",
                "train_report", "smoke_generation", "evaluation", "merged_model", "export_result", "promotion"}
    report = fresh(first).steps["train_sft"].outputs["train_report"][0].load()
    evaluation = fresh(first).steps["smoke_generate"].outputs["evaluation"][0].load()
    assert evaluation.samples == 4
    for run in (first, second):  # a trained run and its fully cached rerun: each a version with everything
        version = fresh(run).model_version
        assert version.model.name == MODEL_NAME
        links = client.list_model_version_artifact_links(model_version_id=version.id, size=100).items
        assert {link.artifact_version.name for link in links} == expected
        meta = client.get_model_version(MODEL_NAME, version.number).run_metadata
        assert meta["eval_loss_before"] == pytest.approx(report.eval_loss_before)
        assert meta["eval_loss_after"] == pytest.approx(report.eval_loss_after)
        assert meta["comet_mode"] == "offline"
        assert meta["merged_model_uri"] == fresh(run).steps["push_merged"].outputs["merged_model"][0].uri
        for key, value in evaluation.summary().items():  # base vs tuned: means, change, EOS rates
            assert meta[key] == pytest.approx(value), key
    merged = fresh(second).steps["push_merged"].outputs["merged_model"][0]  # record_on_model ran on this one
    assert client.get_model_version(MODEL_NAME, fresh(second).model_version.number).run_metadata[
        "merged_model_artifact_id"] == str(merged.id)
    model_links = client.list_model_version_artifact_links(model_version_id=fresh(first).model_version.id,
                                                           only_model_artifacts=True, size=100).items
    assert {link.artifact_version.name for link in model_links} == {"lora_adapter", "merged_model"}


def test_artifacts_have_their_visualizations(runs):
    from zenml.artifacts.utils import load_artifact_visualization

    run = fresh(runs[0])
    report = run.steps["train_sft"].outputs["train_report"][0]
    kinds = [v.type.value for v in report.visualizations]
    assert "image" in kinds and "markdown" in kinds
    png = load_artifact_visualization(report, kinds.index("image")).value
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    card = load_artifact_visualization(report, kinds.index("markdown")).value
    assert "eval loss before -> after" in card

    mix = run.steps["load_datasets"].outputs["dataset_card"][0]
    assert [v.type.value for v in mix.visualizations] == ["markdown"]
    shown = load_artifact_visualization(mix, 0).value
    assert "## Rows per source" in shown and "## Length of the training text" in shown and "## Sample rows" in shown
    for source in run.steps["load_datasets"].config.parameters["data"]["sources"]:
        assert source["name"] in shown

    generation = run.steps["smoke_generate"].outputs["smoke_generation"][0]
    assert [v.type.value for v in generation.visualizations] == ["markdown"]
    shown = load_artifact_visualization(generation, 0).value
    text = generation.load()
    assert type(text) is str
    assert "### Instruction\n\nGive me a tip about topic 3." in shown and text.strip() in shown

    evaluation = run.steps["smoke_generate"].outputs["evaluation"][0]
    assert [v.type.value for v in evaluation.visualizations] == ["markdown", "json"]
    shown = load_artifact_visualization(evaluation, 0).value
    compared = evaluation.load()
    assert "## Base vs tuned on 4 held-out rows" in shown and "| mean reference loss |" in shown
    for i, row in enumerate(compared.rows, start=1):
        assert f"### Row {i}" in shown and f"> {row.instruction}" in shown
        assert f"**Base**: reference loss {row.base.reference_loss:.4f}" in shown
        assert f"**Tuned**: reference loss {row.tuned.reference_loss:.4f}" in shown


def test_summary_table_shows_each_step_status_and_outputs(runs):
    from twinsft.cli.summary import step_rows, step_table

    first, second = fresh(runs[0]), fresh(runs[1])
    assert [(r[0], r[1]) for r in step_rows(first)] == [(s, "completed") for s in STEPS]
    assert [(r[0], r[1]) for r in step_rows(second)] == list(all_cached().items())
    table = step_table(second)
    train_row = next(line for line in table.splitlines() if line.startswith("train_sft"))
    assert "cached" in train_row and "train_report (eval loss" in train_row
    assert "raw_dataset (36 rows)" in table
    smoke_row = next(line for line in table.splitlines() if line.startswith("smoke_generate"))
    assert "evaluation (reference loss" in smoke_row and "EOS" in smoke_row


def test_from_step_replays_without_running_the_steps_before(runs):
    from pipelines import sft_pipeline
    from twinsft.cli.config_file import load_run_config
    from twinsft.cli.replay import replay_from

    _, second, config, _ = runs
    _, cfg = load_run_config(str(config))
    replayed = fresh(replay_from(sft_pipeline.with_options(config_path=str(config)), "train_sft", cfg))
    assert {name: step.status.value for name, step in replayed.steps.items()} == {
        "load_datasets": "skipped", "format_alpaca": "skipped", "split": "skipped",
        "train_sft": "completed", "smoke_generate": "completed", "push_merged": "completed", "promote": "completed",
    }
    # train_sft trained on the datasets the earlier run made: the same artifact versions, not new ones.
    earlier = fresh(second).steps["split"].outputs["train_dataset"][0].id
    assert replayed.steps["train_sft"].inputs["train_dataset"][0].id == earlier

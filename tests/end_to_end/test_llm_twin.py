"""Plugging into LLM Twin: train on an upstream pipeline's dataset artifact by name, or inline our steps after a
parent pipeline's own data step. Tiny model, two training steps."""

from pathlib import Path
from typing import Annotated

import pytest
import yaml
from datasets import Dataset
from zenml import pipeline, step
from zenml.client import Client

from tests.helpers import GENERAL_ROWS, STEPS, TWIN_ROWS, all_cached, statuses, tiny_parameters
from twinsft.cli.config_file import parse_parameters
from twinsft.steps.dataset_materializer import DatasetMaterializer

pytestmark = pytest.mark.pipeline

ARTIFACT = "llmtwin_instruct_dataset"


@step
def generate_instruction_dataset(rows: list[dict]) -> Annotated[dict, ARTIFACT]:
    """Stands in for LLM Twin's dataset generation: instruction/output records in train and test splits."""
    return {"train": rows[:-4], "test": rows[-4:]}


@pipeline(name="generate_instruction_dataset")
def upstream(rows: list[dict]):
    generate_instruction_dataset(rows)


def run_ours(tmp_path: Path, parameters: dict):
    from twinsft.pipelines import sft_pipeline

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": parameters}))
    return sft_pipeline.with_options(config_path=str(config))()


def test_trains_on_an_upstream_artifact_by_name_and_follows_new_versions(tmp_path, tiny_model_dir, data_files):
    rows = TWIN_ROWS + GENERAL_ROWS[:8]
    upstream.with_options(enable_cache=False)(rows=rows)
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    params["data"] = {"sources": [{"name": "llmtwin", "artifact": ARTIFACT}]}

    first = run_ours(tmp_path, params)
    assert statuses(first) == dict.fromkeys(STEPS, "completed")
    raw = first.steps["load_datasets"].outputs["raw_dataset"][0]
    assert raw.load()["instruction"][:] == [r["instruction"] for r in rows[:-4]]  # the train split
    latest = Client().get_artifact_version(ARTIFACT)
    assert raw.run_metadata["rows_per_source"] == {"llmtwin": len(rows) - 4}
    assert first.steps["load_datasets"].config.parameters["data"]["sources"][0]["version"] == str(latest.version)
    assert first.steps["train_sft"].outputs["train_report"][0].load().steps == 2
    card = first.steps["load_datasets"].outputs["dataset_card"][0]
    assert card.visualizations and card.visualizations[0].type.value == "markdown"
    assert "| llmtwin | ZenML artifact" in card.load() and "tokens (" in card.load()

    assert statuses(run_ours(tmp_path, params)) == all_cached()

    # A new version of the artifact reruns load_datasets; same rows, so everything after it stays cached.
    upstream.with_options(enable_cache=False)(rows=rows)
    third = run_ours(tmp_path, params)
    assert statuses(third) == {**all_cached(), "load_datasets": "completed"}
    assert third.steps["load_datasets"].config.parameters["data"]["sources"][0]["version"] != str(latest.version)


@step(output_materializers=DatasetMaterializer)
def crawl_and_generate() -> Annotated[Dataset, "instruct_dataset"]:
    """A parent project's own data step (rows in another order than test_pipeline's mix, so no step of that
    module's runs can be served from this one's cache: caching follows content)."""
    return Dataset.from_list(GENERAL_ROWS + TWIN_ROWS)


def test_a_parent_pipeline_composes_our_steps_after_its_data_step(tmp_path, tiny_model_dir, data_files):
    from twinsft.pipelines import sft_steps

    cfg = parse_parameters(tiny_parameters(tiny_model_dir, *data_files, tmp_path))

    @pipeline(name="llm_twin_end_to_end", enable_cache=False)
    def llm_twin():
        dataset = crawl_and_generate()
        sft_steps(dataset, model=cfg.model, lora=cfg.lora, split=cfg.split, training=cfg.training,
                  generation=cfg.generation, export=cfg.export)

    run = llm_twin()
    names = ["crawl_and_generate", *STEPS[1:]]
    assert statuses(run, names) == dict.fromkeys(names, "completed")
    train = run.steps["split"].outputs["train_dataset"][0].load()
    test = run.steps["split"].outputs["test_dataset"][0].load()
    assert len(train) + len(test) == len(TWIN_ROWS) + len(GENERAL_ROWS)
    assert run.steps["train_sft"].outputs["train_report"][0].load().steps == 2
    assert Path(run.steps["push_merged"].outputs["merged_model"][0].load(), "model.safetensors").is_file()

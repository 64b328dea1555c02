"""A user's first run on a small dataset, with no `generation` section: the defaults fit the data. 40 rows with
`split.test_size: 0.1` hold out 4, fewer than the 8 the evaluation takes by default: the run trains, evaluates
those 4 and says so, instead of stopping on a setting the user never made."""

from __future__ import annotations

import logging

import pytest
import yaml

from tests.helpers import STEPS, statuses, tiny_parameters

pytestmark = pytest.mark.pipeline


def test_forty_rows_and_no_generation_section_train_and_evaluate_the_four_held_out_rows(
    tmp_path, tiny_model_dir, data_files, caplog
):
    from pipelines import sft_pipeline

    parameters = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    del parameters["generation"]
    parameters["split"]["test_size"] = 0.1
    parameters["training"]["learning_rate"] = 4e-3  # settings no other test trains with
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"parameters": parameters}))
    with caplog.at_level(logging.INFO, logger="twinsft.progress"):
        run = sft_pipeline.with_options(config_path=str(config))()

    # The session's store is shared: steps before the split may be cached from another test's run of these rows.
    status = statuses(run)
    assert {step: status[step] for step in STEPS[2:]} == dict.fromkeys(STEPS[2:], "completed")
    assert set(status.values()) <= {"completed", "cached"}
    test_rows = run.steps["split"].outputs["test_dataset"][0].load()
    assert len(test_rows) == 4
    evaluation = run.steps["smoke_generate"].outputs["evaluation"][0]
    assert evaluation.run_metadata["eval_samples"] == 4
    assert len(evaluation.load().rows) == 4
    assert "generation.eval_samples is not set: evaluating the 4 held-out rows of the test split (up to 8 by " \
           "default)" in caplog.messages

"""The table of the pipeline's steps (`twinsft/pipelines/steps_table.py`) is what the pipeline builds: the same
step ids in the same order, so the command line, the checks and the tests that read it never drift."""

from __future__ import annotations

from twinsft.config import DataSpec, ModelSpec, SourceSpec
from twinsft.pipelines.steps_table import SFT_STEPS, STEP_NAMES


def test_the_table_lists_the_built_pipelines_steps_in_order(tiny_model_dir, data_files):
    # Imported here: defining the pipeline asks ZenML's client, which must see the session's private store.
    from twinsft.pipelines import sft_pipeline

    data = DataSpec(sources=[SourceSpec(name="twin", path=str(data_files[0]))])
    sft_pipeline.prepare(data=data, model=ModelSpec(name=str(tiny_model_dir), max_seq_length=256))
    built = list(sft_pipeline.invocations)
    assert built == list(STEP_NAMES) == [step.name for step in SFT_STEPS]
    # Each step's upstream_parameters name only pipeline parameters, and only steps after the first have any.
    parameters = set(sft_pipeline.entrypoint.__annotations__) - {"return"}
    assert all(set(step.upstream_parameters) <= parameters for step in SFT_STEPS)
    assert SFT_STEPS[0].upstream_parameters == ()

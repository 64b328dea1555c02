"""Each pipeline takes every section its configuration class validates: a section the schema accepts but the
pipeline function lacks passes run.py's checks and then fails ZenML's compile with no line naming it."""

import inspect

import pytest

from twinsft.config import DpoRunConfig, RunConfig, TwinRunConfig
from twinsft.pipelines.llm_dpo import dpo_pipeline, twin_pipeline
from twinsft.pipelines.llm_sft import sft_pipeline


@pytest.mark.parametrize("pipeline, schema", [
    (sft_pipeline, RunConfig), (dpo_pipeline, DpoRunConfig), (twin_pipeline, TwinRunConfig)])
def test_the_pipeline_takes_exactly_the_sections_of_its_schema(pipeline, schema):
    assert set(inspect.signature(pipeline.entrypoint).parameters) == set(schema.model_fields)

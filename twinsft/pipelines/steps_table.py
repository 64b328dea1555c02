"""The `llm_sft` pipeline's facts, in one table beside its definition: its steps in order, which run on the GPU
machine, which read the base model, which write to Comet, and what the steps before each one read.

The command line (`--from-step`, the summary), the checks (where each step runs, which secrets must reach
it) and the tests read this table; `tests/pipelines/test_steps_table.py` compares it with the steps of the
built pipeline, so a step added to the pipeline and not here fails a test.
"""

from __future__ import annotations

from twinsft.checks.placement import StepFacts

PIPELINE = "llm_sft"

SFT_STEPS = (
    StepFacts("load_datasets", reads_model=True),  # the tokenizer, for the dataset card's token counts
    StepFacts("format_alpaca", reads_model=True, upstream_parameters=("data",)),  # the tokenizer's EOS
    StepFacts("split", upstream_parameters=("data", "model")),
    StepFacts("train_sft", gpu=True, reads_model=True, writes_comet=True,
              upstream_parameters=("data", "model", "split")),
    StepFacts("smoke_generate", gpu=True, reads_model=True, writes_comet=True),  # logs into train_sft's experiment
    StepFacts("push_merged", gpu=True, reads_model=True),
    # Never cached: it decides against the Model's stages, which change between runs. GPU: it may load the staged
    # version's merged model to evaluate it on this run's rows.
    StepFacts("promote", gpu=True, cached=False),
)
STEP_NAMES = tuple(step.name for step in SFT_STEPS)
NEVER_CACHED = tuple(step.name for step in SFT_STEPS if not step.cached)

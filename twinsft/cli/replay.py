"""`run.py --from-step STEP`: run STEP and everything after it again, reusing the earlier steps' outputs.

This is ZenML's replay (0.98): the steps before STEP are *skipped* (not run, not even looked up in
the cache) and their outputs come from the latest earlier run in which they succeeded; STEP and the
steps after it run with caching off, under the configuration given now (so `--from-step train_sft`
with a new learning rate retrains on the same datasets).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from twinsft.config import RunConfig
from twinsft.errors import UserError
from twinsft.pipelines.steps_table import PIPELINE, SFT_STEPS, STEP_NAMES

log = logging.getLogger(__name__)


def steps_before(step: str) -> list[str]:
    if step not in STEP_NAMES:
        raise UserError(f"--from-step '{step}' is not a step; pick one of {', '.join(STEP_NAMES)}")
    return list(STEP_NAMES[: STEP_NAMES.index(step)])


def source_run(skip: list[str]) -> Any:
    """The latest run of the pipeline in which every step in `skip` succeeded (their outputs are reused)."""
    from zenml.client import Client

    runs = Client().list_pipeline_runs(pipeline_name=PIPELINE, sort_by="desc:created", size=50, hydrate=True)
    for run in runs.items:
        steps = run.steps
        if all(name in steps and steps[name].status.is_successful for name in skip):
            return run
    raise UserError(
        f"--from-step needs an earlier run of {PIPELINE} in which {', '.join(skip)} succeeded; "
        "run without --from-step first"
    )


def changed_upstream(original_parameters: dict[str, Any], cfg: RunConfig, step: str) -> list[str]:
    """Sections of the configuration that differ from the reused run's and that the skipped steps read."""
    keys = next(facts.upstream_parameters for facts in SFT_STEPS if facts.name == step)
    try:
        before = RunConfig.model_validate({k: v for k, v in original_parameters.items() if v is not None})
    except ValidationError:  # made by another version of the schema: assume it differs
        return list(keys)
    return [key for key in keys if getattr(before, key) != getattr(cfg, key)]


def replay_from(pipeline: Any, step: str, cfg: RunConfig) -> Any:
    """Replay `pipeline` (already configured with the run's config file) from `step`; returns the new run."""
    skip = steps_before(step)
    if not skip:
        return pipeline.with_options(enable_cache=False)()
    original = source_run(skip)
    changed = changed_upstream(original.config.parameters or {}, cfg, step)
    if changed:
        log.warning(
            "--from-step %s reuses the outputs of run %s, made with different %s; drop --from-step to rebuild them",
            step, original.name, ", ".join(changed),
        )
    print(f"Replaying from {step}: reusing {', '.join(skip)} of run {original.name}")
    return pipeline.with_options(enable_cache=False).replay(pipeline_run=original.id, skip=skip)

"""The DPO stage's checks before anything heavy loads: local preference files get every data check (a missing
column, an empty value, a source whose pairs all have equal answers: one line, exit 2), then the model, the
machine and the writable folders, as for SFT (`twinsft.checks.preflight`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twinsft.checks.placement import StepFacts
from twinsft.checks.preflight import check_environment, check_model, check_writable, preflight
from twinsft.config import DpoRunConfig, DpoStage, ModelSpec, TwinRunConfig
from twinsft.data.formatting import held_out_rows
from twinsft.data.preference.mix import check_local_pairs
from twinsft.errors import ConfigError
from twinsft.runtime import check_training_requirements


def check_preferences(stage: DpoStage, prefix: str = "") -> None:
    stats = [check_local_pairs(s) if s.path else None for s in stage.preference.sources]
    if all(s is not None for s in stats):
        pairs = sum(s.rows for s in stats if s is not None)
        if pairs < 2:
            raise ConfigError(f"{prefix}preference: {pairs} pair(s) after the checks; DPO needs at least 2 (one to "
                              "train on, one held out)")
        test = held_out_rows(pairs, stage.split.test_size)
        if stage.evaluation.pairs is not None and stage.evaluation.pairs > test:
            raise ConfigError(f"{prefix}evaluation.pairs is {stage.evaluation.pairs} but the test split holds {test} "
                              f"pairs (split.test_size {stage.split.test_size} of {pairs}); lower it or unset it")


def check_stage_machine(model: ModelSpec, stage: DpoStage) -> None:
    check_training_requirements(model, stage.training)
    check_writable(stage)  # type: ignore[arg-type]  # reads .export.output_dir and .training.checkpoint_dir


def preflight_dpo(cfg: DpoRunConfig | TwinRunConfig, push_secrets: Sequence[str] = (),
                  run_file: Mapping | None = None, label: str = "the config",
                  sft_steps: Sequence[StepFacts] = ()) -> None:
    """Every check of a DPO run (or of a chained run: the SFT stage's own first) before anything heavy loads."""
    if isinstance(cfg, TwinRunConfig):
        preflight(cfg, push_secrets, run_file, label, sft_steps)
        check_preferences(cfg.dpo, "dpo.")
        check_stage_machine(cfg.model, cfg.dpo)
        return
    check_preferences(cfg)
    check_model(cfg)  # type: ignore[arg-type]  # reads .model only
    check_environment(cfg, push_secrets)  # type: ignore[arg-type]  # reads .model, .training, .export
    check_stage_machine(cfg.model, cfg)

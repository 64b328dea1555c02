"""`run.py --config dpo.yaml` (the DPO stage from an SFT artifact in the store) and `run.py --config twin.yaml`
(SFT then DPO in one run): check, run, print what the DPO stage measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsft.config import DpoRunConfig, RunConfig, TwinRunConfig
from twinsft.errors import UserError


def is_dpo_run(cfg: RunConfig | DpoRunConfig) -> bool:
    return isinstance(cfg, DpoRunConfig | TwinRunConfig)


def run_dpo(path: Path, cfg: DpoRunConfig | TwinRunConfig, no_cache: bool, from_step: str | None) -> Any:
    if from_step:
        raise UserError("--from-step applies to the SFT pipeline; a DPO run reuses its cached steps by itself")
    from twinsft.runtime import import_unsloth_first
    from twinsft.tracking import quiet_comet_sdk

    quiet_comet_sdk()
    training = cfg.dpo.training if isinstance(cfg, TwinRunConfig) else cfg.training
    import_unsloth_first(training.backend)
    from twinsft.cli.quiet_tracebacks import quiet_user_error_tracebacks
    from twinsft.pipelines.llm_dpo import dpo_pipeline, twin_pipeline
    from twinsft.progress import show_progress

    show_progress()
    quiet_user_error_tracebacks()
    options: dict[str, Any] = {"config_path": str(path)}
    if no_cache:
        options["enable_cache"] = False
    pipeline = twin_pipeline if isinstance(cfg, TwinRunConfig) else dpo_pipeline
    return pipeline.with_options(**options)()


def dpo_lines(run: Any) -> list[str]:
    """The DPO stage's outcome: steps, SFT vs DPO on held-out pairs, where the merged model is."""
    lines = [f"Run {run.name}: {run.status.value}"]
    for name, step in run.steps.items():
        lines.append(f"  {name:<22} {step.status.value}")
    evaluate = run.steps.get("evaluate_dpo")
    if evaluate is not None and evaluate.outputs.get("preference_evaluation"):
        s = evaluate.outputs["preference_evaluation"][0].load().summary()
        lines += [f"Held-out pairs ({s['eval_pairs']}): preference accuracy SFT {s['sft_preference_accuracy']:.2f} -> "
                  f"DPO {s['dpo_preference_accuracy']:.2f}; mean log-prob margin {s['sft_mean_margin']:.2f} -> "
                  f"{s['dpo_mean_margin']:.2f}; chosen loss {s['sft_chosen_loss']:.3f} -> {s['dpo_chosen_loss']:.3f}",
                  f"DPO implicit reward: accuracy {s['dpo_reward_accuracy']:.2f}, margin {s['dpo_reward_margin']:.3f}; "
                  f"greedy answers stopping at EOS: SFT {s['sft_eos_rate']}, DPO {s['dpo_eos_rate']}"]
    push = run.steps.get("push_dpo_merged")
    if push is not None and push.outputs.get("dpo_export_result"):
        result = push.outputs["dpo_export_result"][0].load()
        artifact = push.outputs["dpo_merged_model"][0]
        lines.append(f"DPO merged model: artifact dpo_merged_model version {artifact.version}"
                     + (f", saved at {result.local_dir}" if result.local_dir else ""))
    return lines


def finish_dpo(run: Any, chained: bool) -> int:
    from twinsft.cli.runs import announce_submitted, unfinished_or_failed

    if not run.status.is_finished:
        announce_submitted(run)
        return 0
    if (problem := unfinished_or_failed(run)) is not None:
        import sys

        print(f"error: {problem}", file=sys.stderr)
        return 2
    if chained:
        from twinsft.steps.model_version import record_on_model

        record_on_model(run)  # the SFT stage's numbers on the model version, also from cached steps
    print("\n".join(dpo_lines(run)))
    return 0

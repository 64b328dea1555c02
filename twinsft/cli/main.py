"""The command line of `run.py`: check the run configuration, run (or replay) the pipeline, print the summary.

Bad input (config, data files, environment) ends here with one line and exit status 2, before
torch, datasets or any model is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from twinsft.checks.dpo_preflight import preflight_dpo
from twinsft.checks.preflight import preflight
from twinsft.cli.config_file import CONFIG_DIR, load_run, zenml_secrets
from twinsft.cli.dpo import finish_dpo, is_dpo_run, run_dpo
from twinsft.cli.runs import finish, summary_command
from twinsft.config import DpoRunConfig, RunConfig
from twinsft.errors import UserError
from twinsft.pipelines.steps_table import SFT_STEPS, STEP_NAMES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the SFT pipeline: `python run.py --config configs/lora.yaml [--stack kubernetes] "
        "[--no-cache] [--from-step STEP]`."
    )
    parser.add_argument(
        "--config", required=True, action="append",
        help="run configuration: a path, or a file name in configs/; repeat it to merge files in order",
    )
    parser.add_argument(
        "--stack", help="merge configs/stacks/STACK.yaml last: the settings that put the GPU steps on the "
        "active stack's GPUs (kubernetes, vertex, sagemaker, skypilot, ssh)",
    )
    parser.add_argument("--no-cache", action="store_true", help="rerun every step instead of reusing cached outputs")
    parser.add_argument(
        "--from-step",
        choices=STEP_NAMES,
        help="run this step and the ones after it again, reusing the earlier steps' outputs from the last run",
    )
    return parser.parse_args(argv)


def run_command(argv: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> int:
    """`run.py`'s whole life: 0 after a run (or a submitted one), 2 after bad input (one `error:` line on stderr)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["summary"]:
        return summary_command(argv[1:])
    if argv[:1] in (["snapshot"], ["rerun"]):  # snapshots run by the ZenML server
        from twinsft.cli.server_runs import rerun_command, snapshot_command

        if argv[0] == "snapshot":
            return snapshot_command(argv[1:], config_dir, checked_config)
        return rerun_command(argv[1:])
    if argv[:1] == ["promote"]:
        from twinsft.cli.promote import promote_command

        return promote_command(argv[1:], config_dir)
    if argv[:1] == ["serve"]:
        from twinsft.cli.serve import serve_command

        return serve_command(argv[1:], config_dir)
    args = parse_args(argv)
    try:
        path, cfg = checked_config(args.config, config_dir, args.stack)
        if is_dpo_run(cfg):  # the DPO stage, standalone or chained after SFT
            run = run_dpo(path, cfg, no_cache=args.no_cache, from_step=args.from_step)
            return finish_dpo(run, chained=isinstance(cfg, RunConfig))
        run = run_pipeline(path, cfg, no_cache=args.no_cache, from_step=args.from_step)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return finish(run)  # the summary; or, on an asynchronous orchestrator, where to follow the run


def checked_config(
    arg: str | list[str], config_dir: Path, stack: str | None = None
) -> tuple[Path, RunConfig | DpoRunConfig]:
    """The file ZenML reads and the validated configuration, after every check that loads no model (raises
    UserError). ZenML is imported only once the configuration itself passed, to ask where the steps run."""
    run = load_run(arg, config_dir=config_dir, stack=stack)
    if is_dpo_run(run.config):
        preflight_dpo(run.config, push_secrets=zenml_secrets(run.raw, "push_dpo_merged"), run_file=run.raw,
                      label=run.label, sft_steps=SFT_STEPS)
        return run.path, run.config
    preflight(run.config, push_secrets=zenml_secrets(run.raw, "push_merged"), run_file=run.raw, label=run.label,
              steps=SFT_STEPS)
    return run.path, run.config


def run_pipeline(path: Path, cfg: RunConfig, no_cache: bool, from_step: str | None) -> Any:
    from twinsft.runtime import import_unsloth_first
    from twinsft.tracking import quiet_comet_sdk

    quiet_comet_sdk()  # transformers imports comet_ml when installed: no Sentry reports from it
    import_unsloth_first(cfg.training.backend)
    from twinsft.cli.quiet_tracebacks import quiet_user_error_tracebacks
    from twinsft.cli.replay import replay_from
    from twinsft.pipelines import sft_pipeline
    from twinsft.progress import show_progress

    show_progress()
    quiet_user_error_tracebacks()
    options: dict[str, Any] = {"config_path": str(path)}
    if no_cache:
        options["enable_cache"] = False
    pipeline = sft_pipeline.with_options(**options)
    return replay_from(pipeline, from_step, cfg) if from_step else pipeline()

"""Run the SFT pipeline: `python run.py --config configs/lora.yaml [--no-cache] [--from-step STEP]`.

Bad input (config, data files, environment) ends here with one line and exit status 2, before
torch, datasets or any model is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twinsft.configfile import load_run_config
from twinsft.errors import UserError
from twinsft.reruns import STEPS

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="run configuration: a path, or a file name in configs/")
    parser.add_argument("--no-cache", action="store_true", help="rerun every step instead of reusing cached outputs")
    parser.add_argument(
        "--from-step",
        choices=STEPS,
        help="run this step and the ones after it again, reusing the earlier steps' outputs from the last run",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path, cfg = load_run_config(args.config, config_dir=ROOT / "configs")
        from twinsft.configfile import read_run_file, zenml_secrets
        from twinsft.preflight import preflight

        preflight(cfg, push_secrets=zenml_secrets(read_run_file(path), "push_merged"))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from twinsft.runtime import import_unsloth_first
    from twinsft.tracking import quiet_comet_sdk

    quiet_comet_sdk()  # transformers imports comet_ml when installed: no Sentry reports from it
    import_unsloth_first(cfg.training.backend)
    from pipelines import sft_pipeline
    from twinsft.cli_logging import quiet_user_error_tracebacks
    from twinsft.progress import show_progress
    from twinsft.registry import record_on_model
    from twinsft.reruns import replay_from
    from twinsft.summary import print_summary

    show_progress()
    quiet_user_error_tracebacks()

    options: dict = {"config_path": str(path)}
    if args.no_cache:
        options["enable_cache"] = False
    try:
        pipeline = sft_pipeline.with_options(**options)
        run = replay_from(pipeline, args.from_step, cfg) if args.from_step else pipeline()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record_on_model(run)
    print_summary(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

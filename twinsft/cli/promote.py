"""`run.py promote VERSION --stage production`: move a version of the ZenML Model on, with the checks the promote
step makes (the export verified, better than its base, better than the version in that stage on the same
held-out rows); `--force --reason TEXT` passes a version that fails them (never one whose export failed) and
records the reason on it.

Exit status: 0 promoted, 1 refused (the reasons printed), 2 bad input (one `error:` line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twinsft.checks.store import check_store_reachable
from twinsft.cli.config_file import CONFIG_DIR, load_run
from twinsft.config import PromotionSpec
from twinsft.errors import UserError

DEFAULT_MODEL_NAME = "twinsft"  # the pipeline's ZenML Model when a run configuration names none


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run.py promote",
        description="Move a version of the ZenML Model to a stage, with the promote step's checks.",
    )
    parser.add_argument("version", help="the model version: its number or name (as `zenml model version list` "
                        "shows), or a stage (staging)")
    parser.add_argument("--stage", choices=("staging", "production"), default="production",
                        help="the stage to move it to (default: production)")
    parser.add_argument("--config", action="append",
                        help="a run configuration: its top-level `model:` names the ZenML Model and its "
                        "`promotion:` section gives the margins")
    parser.add_argument("--model", help=f"the ZenML Model's name (default: the config's, else {DEFAULT_MODEL_NAME})")
    parser.add_argument("--force", action="store_true", help="promote even when a check fails (not the export's)")
    parser.add_argument("--reason", help="why --force was needed; recorded on the version")
    args = parser.parse_args(argv)
    if args.force and not (args.reason or "").strip():
        parser.error("--force needs --reason TEXT: the reason is recorded on the version")
    if args.reason and not args.force:
        parser.error("--reason goes with --force")
    return args


def model_and_spec(args: argparse.Namespace, config_dir: Path) -> tuple[str, PromotionSpec]:
    if not args.config:
        return args.model or DEFAULT_MODEL_NAME, PromotionSpec()
    run = load_run(args.config, config_dir=config_dir)
    model = (run.raw.get("model") or {}).get("name") if isinstance(run.raw.get("model"), dict) else None
    return args.model or model or DEFAULT_MODEL_NAME, run.config.promotion


def promote_command(argv: list[str], config_dir: Path = CONFIG_DIR) -> int:
    args = parse_args(argv)
    try:
        model, spec = model_and_spec(args, config_dir)
        check_store_reachable()
        from twinsft.promotion.registry import EVALUATION, EXPORT, find_version, load_output, promote_version
        version = find_version(model, args.version)
        decision = promote_version(model, version, load_output(version, EVALUATION), load_output(version, EXPORT),
                                   spec, stage=args.stage, force_reason=args.reason if args.force else None)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(decision.line())
    for check in decision.checks:
        print(f"  {'pass' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    return 0 if decision.promoted else 1

"""Comet ML tracking of a run: hyperparameters, losses, learning rate, tokens/s, the smoke generation.

`training.report_to: [comet_ml]` turns it on. We drive Comet ourselves instead of through
transformers' CometCallback, which disables itself under `COMET_MODE=offline` and cannot reuse the
experiment of a ZenML Comet experiment tracker. Where the experiment comes from:

- the active ZenML stack has a Comet experiment tracker: its experiment (the pipeline attaches the
  tracker to `train_sft`; ZenML creates, names and ends the experiment, and records its URL);
- `COMET_MODE=offline`: an offline experiment archive (a zip, in `COMET_OFFLINE_DIRECTORY` or the
  working directory), uploaded later with `comet upload <zip>`; nothing goes over the network;
- otherwise online, with `COMET_API_KEY` from the environment (preflight checks it is there).

The experiment key and URL become ZenML metadata of `train_sft`'s outputs; `smoke_generate`
reads them from its adapter input and adds the generation to the same experiment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from twinsft.errors import ConfigError

log = logging.getLogger(__name__)

COMET = "comet_ml"
PROJECT = "twinsft"
Mode = Literal["off", "stack", "offline", "online"]

# Code, git patches and environment details stay out of the experiment: the config says what ran.
_QUIET = dict(
    log_code=False,
    log_graph=False,
    log_git_metadata=False,
    log_git_patch=False,
    log_env_details=False,
    parse_args=False,
    auto_param_logging=False,
    auto_metric_logging=False,
    auto_output_logging=False,
    display_summary_level=0,
)


def hf_report_to(report_to: list[str]) -> list[str] | str:
    """The integrations transformers should run itself: all but Comet, which we drive."""
    return [r for r in report_to if r != COMET] or "none"


def choose_mode(report_to: list[str], stack_tracker_flavor: str | None, env: Mapping[str, str] = os.environ) -> Mode:
    """Where a run's Comet experiment comes from (see the module docstring); raises when it cannot be had."""
    if COMET not in report_to:
        return "off"
    if stack_tracker_flavor == "comet":
        return "stack"
    if env.get("COMET_MODE", "").lower() == "offline":
        return "offline"
    if env.get("COMET_API_KEY"):
        return "online"
    raise ConfigError(
        "training.report_to has comet_ml but COMET_API_KEY is not set; export it, set COMET_MODE=offline, "
        "or remove comet_ml"
    )


def stack_comet_tracker() -> Any | None:
    """The active stack's experiment tracker when it is a Comet one, else None."""
    from zenml.client import Client

    tracker = Client().active_stack.experiment_tracker
    return tracker if tracker is not None and tracker.flavor == "comet" else None


def with_stack_comet(step: Any, report_to: Sequence[str]) -> Any:
    """`step` (a ZenML step) logging to the active stack's Comet experiment tracker when the run reports to Comet
    and the stack has one; else `step` unchanged."""
    if COMET in report_to and (tracker := stack_comet_tracker()) is not None:
        return step.with_options(experiment_tracker=tracker.name)
    return step


def _stack_flavor() -> str | None:
    tracker = stack_comet_tracker()
    return tracker.flavor if tracker is not None else None


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"lora": {"r": 4}} -> {"lora.r": 4}; lists become strings (Comet shows them as text)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return flat


class CometRun:
    """A Comet experiment as a run uses it; the null object (experiment None) when Comet is off."""

    def __init__(self, experiment: Any = None, mode: Mode = "off", owned: bool = True):
        self.experiment = experiment
        self.mode = mode
        self.owned = owned  # a stack tracker's experiment is ended by ZenML, not by us

    @property
    def active(self) -> bool:
        return self.experiment is not None

    def metadata(self) -> dict[str, Any]:
        """What goes into ZenML metadata: the experiment key, mode and URL (online only)."""
        if not self.active:
            return {}
        meta: dict[str, Any] = {"comet_experiment_key": self.experiment.get_key(), "comet_mode": self.mode}
        url = getattr(self.experiment, "url", None)
        if url:
            meta["comet_experiment_url"] = url
        if self.mode == "offline":
            meta["comet_offline_directory"] = os.path.abspath(os.environ.get("COMET_OFFLINE_DIRECTORY", "."))
        return meta

    def log_parameters(self, params: Mapping[str, Any]) -> None:
        if self.active:
            self.experiment.log_parameters(flatten(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.active and metrics:
            self.experiment.log_metrics(dict(metrics), step=step)

    def log_report(self, report: Any) -> None:
        """The end-of-training numbers of a `TrainReport`."""
        self.log_metrics(
            {
                "eval_loss_before": report.eval_loss_before,
                "eval_loss_after": report.eval_loss_after,
                "eval_loss_drop": report.eval_loss_drop,
                "train_loss_mean": report.train_loss,
                "tokens_per_s_mean": report.tokens_per_s,
                "train_tokens": report.train_tokens,
                "peak_memory_gib": report.peak_memory_gib,
            },
            step=report.steps,
        )
        if self.active:
            self.experiment.log_other("device", report.device)

    def log_generation(self, instruction: str, response: str, stopped_at_eos: bool, new_tokens: int) -> None:
        if self.active:
            self.experiment.log_text(
                response,
                metadata={"instruction": instruction, "stopped_at_eos": stopped_at_eos, "new_tokens": new_tokens},
            )
            self.experiment.log_other("smoke_instruction", instruction)
            self.experiment.log_other("smoke_response", response)

    def end(self) -> None:
        if self.active and self.owned:
            self.experiment.end()


def quiet_comet_sdk() -> None:
    """Before comet_ml is imported: no error reports to Comet's Sentry, no monkey-patched auto-logging."""
    os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
    os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")


def _start(mode: Mode, name: str, key: str | None = None) -> CometRun:
    quiet_comet_sdk()
    import comet_ml

    if mode == "stack":
        experiment = comet_ml.get_running_experiment()
        if experiment is None:
            raise ConfigError(
                "the active stack's Comet experiment tracker did not start an experiment for this step; "
                "attach it with steps.<step>.experiment_tracker"
            )
        return CometRun(experiment, mode, owned=False)
    config = comet_ml.ExperimentConfig(name=name, **_QUIET)
    existing = {"experiment_key": key, "mode": "get"} if key else {}
    api_key = None
    if mode == "online" and not os.environ.get("COMET_API_KEY"):
        tracker = stack_comet_tracker()  # reopening an experiment a stack tracker made: its credentials
        api_key = tracker.config.api_key if tracker is not None else None
    experiment = comet_ml.start(
        api_key=api_key,
        project_name=os.environ.get("COMET_PROJECT_NAME", PROJECT),
        online=mode == "online",
        experiment_config=config,
        **existing,
    )
    return CometRun(experiment, mode)


@contextmanager
def training_experiment(report_to: list[str], name: str, params: Mapping[str, Any]) -> Iterator[CometRun]:
    """The Comet experiment of one training run (a null one when Comet is off), ended on the way out."""
    mode = choose_mode(report_to, _stack_flavor() if COMET in report_to else None)
    run = CometRun() if mode == "off" else _start(mode, name)
    if run.active:
        log.info("Comet experiment %s (%s)", run.experiment.get_key(), mode)
        run.log_parameters(params)
    try:
        yield run
    finally:
        run.end()


@contextmanager
def existing_experiment(metadata: Mapping[str, Any], name: str) -> Iterator[CometRun]:
    """Reopen the training run's experiment from its ZenML metadata; null when training had no Comet.

    Failing to reach Comet here only warns: the generation is also in ZenML, nothing is lost.
    """
    key, mode = metadata.get("comet_experiment_key"), metadata.get("comet_mode")
    if not key:
        yield CometRun()
        return
    mode = "offline" if mode == "offline" or os.environ.get("COMET_MODE", "").lower() == "offline" else "online"
    try:
        run = _start(mode, name, key=str(key))
    except Exception as exc:
        log.warning("could not reopen Comet experiment %s (%s); generation not logged there", key, exc)
        run = CometRun()
    try:
        yield run
    finally:
        run.end()

"""Checks that catch bad input before any model or dataset is loaded."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from twinsft.checks.gated_models import check_gated_access
from twinsft.checks.placement import StepFacts
from twinsft.checks.sequence_budget import check_template_fits, local_tokenizer
from twinsft.checks.stack import check_stack
from twinsft.config import RunConfig
from twinsft.data.alpaca import ALPACA
from twinsft.data.formatting import held_out_rows
from twinsft.data.mix import check_local_source
from twinsft.errors import ConfigError, DataError
from twinsft.export.hub import hub_token
from twinsft.generation.evaluate import check_eval_samples
from twinsft.models import gguf_path
from twinsft.runtime import check_training_requirements
from twinsft.tracking import choose_mode
from twinsft.training.response_loss import check_template, check_token_boundary
from twinsft.training.world import split_batch

LOCAL_PREFIXES = ("/", "./", "../", "~")


def check_data(cfg: RunConfig) -> None:
    """Local files and folders get every data check here (light imports); Hub and artifact sources when loaded.

    When every source is a local file or folder (not a `save_to_disk` one), the rows are counted here, so
    the test split's size is known: an explicit `generation.eval_samples` must fit in it.
    """
    stats = [check_local_source(source) if source.path else None for source in cfg.data.sources]
    rows = sum(s.rows for s in stats if s is not None)
    counted = all(s is not None for s in stats)
    if counted and rows < 2:
        raise DataError(f"data.sources hold {rows} row(s) in all; the train/test split needs at least 2: add rows")
    explicit = cfg.generation.eval_samples is not None  # unset, the step evaluates what the split holds
    if explicit and counted:
        test_rows = held_out_rows(rows, cfg.split.test_size)
        check_eval_samples(cfg.generation.eval_samples, test_rows,
                           f" (split.test_size {cfg.split.test_size} of {rows} rows)")


def check_model(cfg: RunConfig) -> None:
    model = cfg.model
    if model.gguf_file:
        gguf_path(model)  # raises ConfigError naming the package or file
    elif model.name.startswith(LOCAL_PREFIXES) and not Path(model.name).expanduser().is_dir():
        raise ConfigError(f"model.name '{model.name}' looks like a local directory but does not exist")
    check_template_fits(model)


def check_loss_on(cfg: RunConfig) -> None:
    """Response-only loss needs the template to mark where the response starts, on a token boundary.

    The boundary is checked here when the model's `tokenizer.json` is on disk (light `tokenizers`, no model);
    otherwise training checks it with the loaded tokenizer.
    """
    if cfg.training.loss_on != "response":
        return
    check_template(ALPACA)
    tokenizer = local_tokenizer(cfg.model)
    if tokenizer is None:  # training checks with the model's own tokenizer
        return
    check_token_boundary(lambda text: tokenizer.encode(text).ids, ALPACA, how="with the model's tokenizer")


def check_batch_split(cfg: RunConfig) -> None:
    """An explicit training.num_processes must split the effective batch, wherever the step runs (`auto`
    counts the GPUs of the step's machine, so the step checks it there: training.launch)."""
    if cfg.training.num_processes != "auto":
        split_batch(cfg.training, cfg.training.num_processes)


def check_environment(cfg: RunConfig, push_secrets: Sequence[str] = ()) -> None:
    """GPU-only features, optional packages and secrets, each named with its fix."""
    training, model = cfg.training, cfg.model
    check_training_requirements(model, training)
    check_gated_access(model)
    choose_mode(training.report_to, stack_tracker_flavor=None)  # raises when Comet is on without a key
    if cfg.export.push and not push_secrets:
        hub_token()  # with ZenML secrets named for the push, HF_TOKEN only exists inside the step


def check_writable(cfg: RunConfig) -> None:
    for field, value in (("export.output_dir", cfg.export.output_dir), ("training.checkpoint_dir",
                                                                        cfg.training.checkpoint_dir)):
        if value is None:  # not kept in a local folder (see config.py)
            continue
        path = Path(value).expanduser().resolve()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            raise ConfigError(f"{field} '{value}': '{existing}' is a file, not a directory; pick another directory")
        try:  # a real write: os.access says yes to root even on read-only mounts
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as exc:
            raise ConfigError(
                f"{field} '{value}' is not writable ({existing}: {exc.strerror}); pick another directory"
            ) from None


def preflight(
    cfg: RunConfig, push_secrets: Sequence[str] = (), run_file: Mapping | None = None, label: str = "the config",
    steps: Sequence[StepFacts] = (),
) -> None:
    """Every check before anything heavy loads. The configuration and local data first (no ZenML import);
    then, given the run file and the pipeline's `steps`, the active stack says where the steps run: this
    machine's checks apply only when they run here, and the GPU steps repeat them wherever they run
    (`twinsft.checks.machine`)."""
    check_data(cfg)
    check_model(cfg)
    check_loss_on(cfg)
    check_batch_split(cfg)
    if run_file is not None and not check_stack(cfg, run_file, label, steps).on_this_machine:
        return
    check_environment(cfg, push_secrets)
    check_writable(cfg)

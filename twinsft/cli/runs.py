"""Runs that outlive `run.py`: an asynchronous orchestrator's run, and `run.py summary RUN` once it has finished.

On an asynchronous orchestrator (Kubernetes, Vertex, SageMaker, SkyPilot, or `synchronous: false`) the pipeline
call returns as soon as the run is submitted: its steps have not run, so there are no outputs to load yet.
`run.py` then says where the run can be followed and how to print its summary later, and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twinsft.checks.store import check_store_reachable
from twinsft.errors import UserError
from twinsft.pipelines.steps_table import PIPELINE


def dashboard_url(run: Any) -> str | None:
    from zenml.utils.dashboard_utils import get_run_url

    return get_run_url(run)


def summary_hint(run: Any) -> str:
    return f"python run.py summary {run.name}"


def announce_submitted(run: Any) -> None:
    """What to print for a run that is submitted but not finished."""
    url = dashboard_url(run)
    print(f"\nRun {run.name} submitted (status: {run.status.value}); it runs on the stack's orchestrator.")
    print(f"Dashboard: {url}" if url else
          "Dashboard: none (this client's ZenML store is local; `zenml login <server>` connects one)")
    print(f"Its summary, once it has finished: {summary_hint(run)}")


def failed_step(run: Any) -> str | None:
    return next((name for name, step in run.steps.items() if step.status.value == "failed"), None)


def unfinished_or_failed(run: Any) -> str | None:
    """One line saying why `run` has no summary to print, or None when it has one."""
    status = run.status
    if not status.is_finished:
        url = dashboard_url(run)
        return (f"run {run.name} has not finished (status: {status.value}); rerun `{summary_hint(run)}` when it has"
                + (f" (dashboard: {url})" if url else ""))
    if not status.is_successful:
        step = failed_step(run)
        where = f" at step {step}" if step else ""
        url = dashboard_url(run)
        logs = f"the step logs are on its dashboard page {url}" if url else "`zenml pipeline runs list` shows it"
        return f"run {run.name} {status.value}{where}, so it has no outputs to summarize; {logs}"
    return None


def find_run(name_or_id: str) -> Any:
    from zenml.client import Client

    check_store_reachable()
    try:
        run = Client().get_pipeline_run(name_or_id)
    except (KeyError, ValueError):  # ZenML: no such run; or a prefix that matches several
        raise UserError(
            f"no single pipeline run named '{name_or_id}' (or with that id); list them with "
            "`zenml pipeline runs list`"
        ) from None
    if run.pipeline is None or run.pipeline.name != PIPELINE:
        name = run.pipeline.name if run.pipeline else "none"
        raise UserError(f"run {run.name} is a run of pipeline '{name}', not {PIPELINE}; pick a run of {PIPELINE}")
    return run


def finish(run: Any) -> int:
    """After the pipeline call: the summary of a finished run (0); name and dashboard of a submitted one (0);
    one `error:` line for a run that ended without outputs (2)."""
    if not run.status.is_finished:  # an asynchronous orchestrator: submitted, no outputs yet
        announce_submitted(run)
        return 0
    return print_or_refuse(run)


def print_or_refuse(run: Any) -> int:
    if (problem := unfinished_or_failed(run)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    report(run)
    return 0


def report(run: Any) -> None:
    """The run's outcome recorded on its ZenML Model version, then its summary printed."""
    from twinsft.cli.summary import print_summary
    from twinsft.steps.model_version import record_on_model

    record_on_model(run)
    print_summary(run)


def summary_command(argv: list[str]) -> int:
    """`run.py summary RUN`: the summary of a finished run (0); one `error:` line and 2 when it has none."""
    parser = argparse.ArgumentParser(
        prog="run.py summary", description="Print the summary of a finished run of the SFT pipeline."
    )
    parser.add_argument("run", help="the run's name or id (as `run.py` printed it, or `zenml pipeline runs list`)")
    args = parser.parse_args(argv)
    try:
        run = find_run(args.run)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return print_or_refuse(run)

"""Asynchronous runs: `run.py` on an orchestrator that returns once the run is submitted prints the run's name,
its dashboard URL and how to get its summary, and exits 0; `run.py summary RUN` prints a finished run's table
later, and refuses an unfinished or failed run with one line and exit status 2.

The asynchronous orchestrator is a test flavor registered in the session's ZenML store (tests/cli/
queued_orchestrator.py); the run.py processes use its stack through ZENML_ACTIVE_STACK_ID, so the repository's
active stack never changes. The dashboard URL needs a ZenML server; without one, ZenML's URL function is
replaced at that boundary by one that answers as a server would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.helpers import ROOT, STEPS, tiny_parameters, write_config

pytestmark = pytest.mark.pipeline

PROBE = "import sys; exec(sys.argv[1]); import run; sys.exit(run.main(sys.argv[2:]))"
FAKE_SERVER_URL = ("import zenml.utils.dashboard_utils as d; "
                   "d.get_run_url = lambda run: f'https://zenml.example/projects/default/runs/{run.id}'")


def run_py(*args: str, prelude: str = "", stack_id: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"ZENML_ACTIVE_STACK_ID": stack_id} if stack_id else {})}
    return subprocess.run([sys.executable, "-c", PROBE, prelude, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def latest_run():
    from zenml.client import Client

    return Client().list_pipeline_runs(pipeline_name="llm_sft", sort_by="desc:created", size=1, hydrate=True).items[0]


@pytest.fixture(scope="module")
def queued_stack() -> str:
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    flavor = "twinsft_queued_test"
    try:
        client.get_flavor_by_name_and_type(flavor, StackComponentType.ORCHESTRATOR)
    except KeyError:  # first use in this session's store
        client.create_flavor(source="tests.cli.queued_orchestrator.QueuedOrchestratorFlavor",
                             component_type=StackComponentType.ORCHESTRATOR)
    suffix = uuid.uuid4().hex[:8]
    orchestrator = client.create_stack_component(name=f"queued-{suffix}", flavor=flavor,
                                                 component_type=StackComponentType.ORCHESTRATOR, configuration={})
    store = client.active_stack_model.components[StackComponentType.ARTIFACT_STORE][0]
    stack = client.create_stack(name=f"queued-{suffix}", components={
        StackComponentType.ORCHESTRATOR: str(orchestrator.id), StackComponentType.ARTIFACT_STORE: str(store.id)})
    return str(stack.id)


@pytest.fixture
def config(tmp_path, data_files, tiny_model_dir):
    return write_config(tmp_path / "tiny.yaml", tiny_parameters(tiny_model_dir, *data_files, tmp_path))


def test_a_submitted_run_prints_its_name_and_dashboard_and_exits_0(config, queued_stack):
    proc = run_py("--config", str(config), prelude=FAKE_SERVER_URL, stack_id=queued_stack)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = latest_run()
    status = run.status.value
    assert not run.status.is_finished and not run.steps, status  # nothing ran: no outputs were loaded
    assert f"Run {run.name} submitted (status: {status})" in proc.stdout
    assert f"Dashboard: https://zenml.example/projects/default/runs/{run.id}" in proc.stdout
    assert f"python run.py summary {run.name}" in proc.stdout
    assert "step  status" not in proc.stdout  # no summary table

    # Its summary, asked for too early: one line, exit 2.
    early = run_py("summary", run.name)
    assert early.returncode == 2
    assert early.stderr.strip().splitlines() == [
        f"error: run {run.name} has not finished (status: {status}); rerun `python run.py summary {run.name}` "
        "when it has"]

    # Ended without outputs.
    from zenml.client import Client
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineRunUpdate

    Client().zen_store.update_run(run.id, PipelineRunUpdate(status=ExecutionStatus.FAILED))
    failed = run_py("summary", str(run.id))
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: run {run.name} failed, so it has no outputs"), lines


def test_the_summary_of_a_finished_run_is_its_end_of_run_table(config):
    first = run_py("--config", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    run = latest_run()
    later = run_py("summary", run.name)
    assert later.returncode == 0, later.stderr[-3000:]

    def table(out: str) -> list[list[str]]:
        return [line.split()[:2] for line in out.splitlines() if line.split()[:1] and line.split()[0] in STEPS]

    assert table(later.stdout) == table(first.stdout) and len(table(later.stdout)) == len(STEPS)
    assert f"Run {run.name}" in later.stdout and "Held-out" in later.stdout and "Merged" in later.stdout


def test_the_summary_of_an_unknown_run_is_one_line():
    proc = run_py("summary", "no-such-run-anywhere")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no single pipeline run named 'no-such-run-anywhere' (or with that id); list them with "
        "`zenml pipeline runs list`"]

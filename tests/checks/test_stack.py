"""Preflight knows where the steps run: with a remote orchestrator it skips this machine's checks (CUDA,
bitsandbytes, tokens, folders) and checks what the steps need instead (a reachable artifact store, a ZenML
server, the named secrets and the tokens in them), each failure one line and exit status 2.

The stacks are registered in the test session's own ZenML store, with test flavors that report themselves
as remote (tests/checks/fake_flavors.py); nothing runs on them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT
from twinsft.checks import stack as stack_checks
from twinsft.cli.main import checked_config, run_command

CONFIGS = ROOT / "configs"
NO_GPU = pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is not None and __import__("torch").cuda.is_available(),
    reason="this machine could run QLoRA itself",
)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """Two stacks with a remote orchestrator: one with a remote artifact store, one with the local default."""
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    client = Client()
    client.create_flavor("tests.checks.fake_flavors.RemoteTestOrchestratorFlavor", T.ORCHESTRATOR)
    client.create_flavor("tests.checks.fake_flavors.RemoteTestArtifactStoreFlavor", T.ARTIFACT_STORE)
    client.create_stack_component("pf-remote-orch", "test_remote", T.ORCHESTRATOR, {})
    store = str(tmp_path_factory.mktemp("remote-store"))
    client.create_stack_component("pf-remote-store", "test_remote_store", T.ARTIFACT_STORE, {"path": store})
    client.create_stack("pf-remote", components={T.ORCHESTRATOR: "pf-remote-orch", T.ARTIFACT_STORE: "pf-remote-store"})
    client.create_stack("pf-local-store", components={T.ORCHESTRATOR: "pf-remote-orch", T.ARTIFACT_STORE: "default"})
    previous = client.active_stack_model.name
    yield client
    client.activate_stack(previous)
    for name in ("pf-remote", "pf-local-store"):
        client.delete_stack(name)
    client.delete_stack_component("pf-remote-orch", T.ORCHESTRATOR)
    client.delete_stack_component("pf-remote-store", T.ARTIFACT_STORE)


@pytest.fixture
def secrets(stacks):
    """The secrets the overlays name, with the keys the steps read; removed afterwards."""
    made = {"hf": {"HF_TOKEN": "hf_fake_token"}, "comet": {"COMET_API_KEY": "fake-comet-key"}}
    for name, values in made.items():
        stacks.create_secret(name, values=values)
    yield stacks
    for name in made:
        try:
            stacks.delete_secret(name)
        except KeyError:
            pass


@pytest.fixture
def on_stack(stacks):
    def activate(name: str):
        stacks.activate_stack(name)

    yield activate
    stacks.activate_stack("default")


@pytest.fixture
def server_connected(monkeypatch):
    """As if `zenml login <server>` had been run: the test store is a local SQLite one."""
    monkeypatch.setattr(stack_checks, "server_is_local", lambda: False)


def overlay(tmp_path: Path, document: dict) -> str:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def one_line_error(capsys, argv: list[str]) -> str:
    assert run_command(argv, config_dir=CONFIGS) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@NO_GPU
def test_remote_mode_accepts_qlora_on_a_cpu_client(secrets, on_stack, server_connected, tmp_path, capsys):
    # Here, on this machine, QLoRA is refused...
    assert "needs a CUDA GPU" in one_line_error(capsys, ["--config", "qlora.yaml"]) or \
        "needs bitsandbytes" in one_line_error(capsys, ["--config", "qlora.yaml"])
    # ...and on a stack whose steps run elsewhere, the pods check their own GPU: preflight passes.
    on_stack("pf-remote")
    path, cfg = checked_config(["qlora.yaml", overlay(tmp_path, {"secrets": ["hf", "comet"]})], CONFIGS)
    assert cfg.model.load_in_4bit and yaml.safe_load(path.read_text())["secrets"] == ["hf", "comet"]


@pytest.mark.parametrize(
    ("stack", "document", "fragments"),
    [
        ("pf-remote", {"secrets": ["hf", "comet", "nope"]},
         ["secrets names the ZenML secret 'nope', which does not exist", "zenml secret create nope"]),
        ("pf-remote", {"secrets": ["hf"], "steps": {"train_sft": {"secrets": ["missing-too"]}}},
         ["steps.train_sft.secrets names the ZenML secret 'missing-too'"]),
        ("pf-local-store", {"secrets": ["hf", "comet"]},
         ["local artifact store 'default'", "test_remote orchestrator 'pf-remote-orch' cannot reach",
          "register a remote artifact store"]),
        ("pf-remote", {"secrets": ["comet"]},
         ["model.name 'meta-llama/Llama-3.1-8B' is gated on the Hub but no ZenML secret with a HF_TOKEN key reaches "
          "load_datasets, format_alpaca, train_sft, smoke_generate, push_merged"]),
        ("pf-remote", {"secrets": ["hf"]},
         ["training.report_to has comet_ml but no ZenML secret with a COMET_API_KEY key reaches train_sft, "
          "smoke_generate"]),
        ("pf-remote", {"secrets": ["hf", "comet"], "steps": {"train_sft": {"step_operator": "gpu"}}},
         ["steps.train_sft.step_operator 'gpu': the active stack 'pf-remote' has no such step operator"]),
    ],
    ids=["missing-run-secret", "missing-step-secret", "local-artifact-store", "no-hf-token", "no-comet-key",
         "no-step-operator"],
)
def test_remote_mode_failures_are_one_line(secrets, on_stack, server_connected, tmp_path, capsys, stack, document,
                                           fragments):
    on_stack(stack)
    line = one_line_error(capsys, ["--config", "qlora.yaml", "--config", overlay(tmp_path, document)])
    for fragment in fragments:
        assert fragment in line, line


def test_a_remote_orchestrator_needs_a_server(secrets, on_stack, tmp_path, capsys):
    on_stack("pf-remote")  # the test store is SQLite: nothing another host could report to
    secrets_only = overlay(tmp_path, {"secrets": ["hf", "comet"]})
    line = one_line_error(capsys, ["--config", "qlora.yaml", "--config", secrets_only])
    assert "test_remote orchestrator 'pf-remote-orch' runs steps on other machines, which need a ZenML server" in line
    assert "zenml login" in line


def test_an_overlay_for_another_flavor_is_refused(secrets, on_stack, server_connected, capsys):
    on_stack("pf-remote")
    line = one_line_error(capsys, ["--config", "qlora.yaml", "--stack", "kubernetes"])
    assert "steps.train_sft.settings.orchestrator.kubernetes is for a component the active stack 'pf-remote' " \
           "does not have (its orchestrator: 'pf-remote-orch' (test_remote))" in line
    # `orchestrator` alone names the stack's orchestrator: its settings class refuses SkyPilot's keys.
    line = one_line_error(capsys, ["--config", "qlora.yaml", "--stack", "skypilot"])
    assert "settings.orchestrator: accelerators, disk_size, docker_run_args, memory is not a setting of the " \
           "test_remote orchestrator" in line


def test_on_this_machine_a_missing_named_secret_is_one_line_too(on_stack, tmp_path, capsys, stacks):
    line = one_line_error(capsys, ["--config", "demo.yaml", "--config", overlay(tmp_path, {"secrets": ["absent"]})])
    assert "names the ZenML secret 'absent', which does not exist" in line

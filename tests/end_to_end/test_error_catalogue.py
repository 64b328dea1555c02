"""The bad-input catalogue: every case ends `run.py` with one line naming the field or file and the fix.

Each case runs `run.py` in a fresh interpreter in which importing a heavy library (torch, datasets,
transformers, TRL, PEFT, ZenML) fails, so "no model loaded" is enforced, not just observed. Only the
cases that must ask whether CUDA is present may import torch, and only the checks of this machine may
import ZenML (to learn from the active stack that the steps run here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.end_to_end.error_cases import CASES, MARKS, ON_THIS_MACHINE
from tests.helpers import ROOT, tiny_parameters

pytestmark = pytest.mark.pipeline

HEAVY = ("torch", "datasets", "transformers", "trl", "peft", "accelerate", "zenml")

PROBE = r"""
import importlib.abc, importlib.util, sys

allowed = set(filter(None, sys.argv[1].split(",")))

class BlockHeavy(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in HEAVY and name.partition(".")[0] not in allowed:
            return importlib.util.spec_from_loader(name, self)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise ImportError(f"blocked heavy import: {module.__name__}")

sys.meta_path.insert(0, BlockHeavy())
exec(sys.argv[2])
import run
sys.exit(run.main(sys.argv[3:]))
""".replace("HEAVY", repr(HEAVY))

def clean_env(tmp_path: Path) -> dict[str, str]:
    """No tokens, and a private (empty) Hugging Face cache, so the gated and template rules see no copies."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "COMET_API_KEY", "COMET_MODE")}
    return {**env, "HF_HOME": str(tmp_path / "hf-home")}


def run_probe(
    tmp_path: Path, argv: list[str], allow_torch: bool = False, prelude: str = "", allow_zenml: bool = False
) -> subprocess.CompletedProcess:
    allowed = ",".join(m for m, ok in (("torch", allow_torch), ("zenml", allow_zenml)) if ok)
    cmd = [sys.executable, "-c", PROBE, allowed, prelude, *argv]
    return subprocess.run(cmd, cwd=ROOT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, fragments: list) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    print(lines[0])
    for fragment in fragments:
        options = fragment if isinstance(fragment, tuple) else (fragment,)
        assert any(o in lines[0] for o in options), (fragment, lines[0])
    return lines[0]


def pipeline_loads(stderr: str) -> bool:
    """The probe stopped where the pipeline itself loads (torch, datasets, ...), past every check."""
    return any(f"blocked heavy import: {m}" in stderr for m in HEAVY if m != "zenml")


def test_the_catalogue_has_at_least_15_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", [pytest.param(c, marks=MARKS.get(c, []), id=c) for c in CASES])
def test_bad_input_is_one_line_exit_2_before_any_model(case, tmp_path, tiny_model_dir, data_files):
    spec = CASES[case]
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    document = spec.edit(params, tmp_path)
    config = tmp_path / "bad.yaml"
    if isinstance(document, str):
        config.write_text(document)
    else:
        config.write_text(yaml.safe_dump(document if isinstance(document, dict) else {"parameters": params}))
    proc = run_probe(tmp_path, ["--config", str(config)], spec.allow_torch, spec.prelude, case in ON_THIS_MACHINE)
    assert_one_line_error(proc, spec.fragments)


def test_missing_config_file_lists_the_shipped_ones(tmp_path):
    proc = run_probe(tmp_path, ["--config", "no-such-config.yaml"])
    assert_one_line_error(proc, ["config file 'no-such-config.yaml' not found", "lora.yaml", "demo.yaml"])


@pytest.mark.parametrize("loss_on", ["all", "response"])
def test_the_good_config_passes_preflight_without_heavy_imports(tmp_path, tiny_model_dir, data_files, loss_on):
    """The control: the same probe with the unedited config gets past every check (to the pipeline import)."""
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path, loss_on=loss_on)
    config = tmp_path / "good.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    proc = run_probe(tmp_path, ["--config", str(config)])
    assert proc.returncode != 2 and not any(line.startswith("error: ") for line in proc.stderr.splitlines())
    assert "blocked heavy import: zenml" in proc.stderr  # stopped only where the active stack is read
    proc = run_probe(tmp_path, ["--config", str(config)], allow_zenml=True)
    assert proc.returncode != 2 and not any(line.startswith("error: ") for line in proc.stderr.splitlines())
    assert pipeline_loads(proc.stderr)  # passed this machine's checks


@pytest.mark.parametrize(
    ("setup", "what"),
    [
        (lambda tmp, env: env.update(HF_TOKEN="hf_fake"), "a token in HF_TOKEN"),
        (lambda tmp, env: write_cached_config(tmp / "hf-home" / "hub", "meta-llama/Llama-3.1-8B"), "a cached copy"),
    ],
)
def test_a_gated_model_passes_with_a_token_or_a_cached_copy(tmp_path, tiny_model_dir, data_files, setup, what):
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    params["model"] = {"name": "meta-llama/Llama-3.1-8B", "max_seq_length": 2048}
    config = tmp_path / "gated.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    env = clean_env(tmp_path)
    setup(tmp_path, env)
    cmd = [sys.executable, "-c", PROBE, "zenml", "", "--config", str(config)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert pipeline_loads(proc.stderr), (what, proc.stderr[-2000:])


def write_cached_config(hub_cache: Path, repo_id: str) -> None:
    """The Hugging Face cache layout for one file of a model at `main`."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")


def test_push_with_hf_token_from_a_zenml_secret_defers_the_token_check_to_the_step(tmp_path, tiny_model_dir,
                                                                                     data_files):
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    params["export"].update(push=True, repo_id="me/twin")
    config = tmp_path / "secret.yaml"
    config.write_text(yaml.safe_dump({"parameters": params, "steps": {"push_merged": {"secrets": ["hf-push"]}}}))
    from zenml.client import Client

    Client().create_secret("hf-push", values={"HF_TOKEN": "hf_fake"})  # in the session's store, which the probe uses
    try:
        proc = run_probe(tmp_path, ["--config", str(config)], allow_zenml=True)
    finally:
        Client().delete_secret("hf-push")
    assert pipeline_loads(proc.stderr), proc.stderr[-2000:]  # preflight passed

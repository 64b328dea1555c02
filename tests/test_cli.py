"""run.py rejects bad input with one line and exit status 2, before torch/datasets/models load."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import tiny_parameters

ROOT = Path(__file__).resolve().parents[1]

PROBE = (
    "import sys, run; rc = run.main(sys.argv[1:]); "
    "heavy = sorted(m for m in ('torch', 'datasets', 'transformers', 'trl', 'zenml') if m in sys.modules); "
    "print('HEAVY', heavy); sys.exit(rc)"
)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def write_config(path: Path, parameters: dict) -> Path:
    path.write_text(yaml.safe_dump({"parameters": parameters}))
    return path


@pytest.fixture
def good_parameters(tmp_path, data_files, tiny_model_dir):
    return tiny_parameters(tiny_model_dir, *data_files, tmp_path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["training"].update(learning_rate=-1), "parameters.training.learning_rate"),
        (lambda p: p.update(extra_section={}), "parameters.extra_section: unknown key"),
        (lambda p: p["data"]["sources"][0].update(path="/nope/missing.jsonl"), "file '/nope/missing.jsonl' not found"),
        (lambda p: p["model"].update(name="./no-such-model-dir"), "model.name './no-such-model-dir' looks like"),
        (lambda p: p["export"].update(push=True, repo_id="me/model"), "HF_TOKEN is not set"),
        (lambda p: p["training"].update(report_to=["comet_ml"]), "COMET_API_KEY is not set"),
        pytest.param(
            lambda p: p["training"].update(optim="adamw_8bit"),
            "needs bitsandbytes",
            marks=pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bnb installed"),
        ),
        (lambda p: p["model"].update(package="not-a-real-dist", gguf_file="x.gguf"), "is not installed"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_heavy_imports(tmp_path, good_parameters, mutate, message):
    mutate(good_parameters)
    config = write_config(tmp_path / "bad.yaml", good_parameters)
    proc = run_cli("--config", str(config))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "HEAVY []" in proc.stdout


def test_missing_config_file_lists_the_shipped_ones():
    proc = run_cli("--config", "nope.yaml")
    assert proc.returncode == 2
    assert "config file 'nope.yaml' not found" in proc.stderr and "lora.yaml" in proc.stderr

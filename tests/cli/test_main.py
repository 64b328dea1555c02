"""run.py rejects bad input, bad local data included, with one line and exit status 2, before
torch/datasets/ZenML or a model load."""

import importlib.util

import pytest

from tests.helpers import run_cli, tiny_parameters, write_config

MACHINE_CHECKS = {"HF_TOKEN is not set", "COMET_API_KEY is not set", "needs bitsandbytes"}


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
    # This machine's checks come after ZenML says the steps run here (the active stack): ZenML may be loaded.
    assert "HEAVY []" in proc.stdout or (message in MACHINE_CHECKS and "HEAVY ['zenml']" in proc.stdout)


def test_missing_config_file_lists_the_shipped_ones():
    proc = run_cli("--config", "nope.yaml")
    assert proc.returncode == 2
    assert "config file 'nope.yaml' not found" in proc.stderr and "lora.yaml" in proc.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n{"instruction": oops\n',
         ["line 3 is not valid JSON"]),
        ('{"instruction": "a", "answer": "b"}\n', ["column 'output' missing", "['instruction', 'answer']"]),
        ("", ["is empty: no rows"]),
    ],
    ids=["broken-line", "missing-column", "empty"],
)
def test_bad_local_data_exits_2_with_one_line_before_heavy_imports(tmp_path, data_files, tiny_model_dir, content,
                                                                     expected):
    bad = tmp_path / "mine.jsonl"
    bad.write_text(content)
    parameters = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    parameters["data"]["sources"].append({"name": "mine", "path": str(bad)})
    proc = run_cli("--config", str(write_config(tmp_path / "bad.yaml", parameters)))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert f"data source 'mine' ({bad})" in lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    assert "HEAVY []" in proc.stdout

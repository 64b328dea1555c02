"""run.py rejects bad local data with one line and exit status 2, before torch/datasets/ZenML or a model load."""

import pytest

from tests.helpers import tiny_parameters
from tests.test_cli import run_cli, write_config


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

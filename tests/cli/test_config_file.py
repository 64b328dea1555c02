"""The run file: a top-level `model:` block."""

from __future__ import annotations

import pytest

from twinsft.errors import ConfigError


def test_top_level_model_needs_a_name(tmp_path):
    from twinsft.cli.config_file import read_run_file

    path = tmp_path / "c.yaml"
    path.write_text("model: meta-llama/Llama-3.1-8B\nparameters: {}\n")
    with pytest.raises(ConfigError, match=r"top-level 'model:'.*needs a 'name'.*parameters.model"):
        read_run_file(path)
    path.write_text("model: {name: mine}\nparameters: {}\n")
    assert read_run_file(path)["model"] == {"name": "mine"}

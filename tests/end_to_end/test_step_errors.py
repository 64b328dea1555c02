"""A UserError raised inside a step reaches the caller as itself, and ZenML logs it without a traceback."""

import json

import pytest
import yaml

from tests.helpers import tiny_parameters
from twinsft.cli.quiet_tracebacks import quiet_user_error_tracebacks
from twinsft.errors import DataError

pytestmark = pytest.mark.pipeline


def test_step_user_error_is_logged_without_traceback(tmp_path, tiny_model_dir, data_files, caplog):
    from pipelines import sft_pipeline

    # A dataset directory read through the Hub code path: its columns are only seen inside load_datasets.
    hub_dir = tmp_path / "hub-dataset"
    hub_dir.mkdir()
    (hub_dir / "train.jsonl").write_text(json.dumps({"question": "q", "output": "a"}) + "\n")
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    params["data"]["sources"][0] = {"name": "hubby", "hub_id": str(hub_dir)}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))

    quiet_user_error_tracebacks()
    with pytest.raises(DataError, match=r"data source 'hubby' \(.*\): column 'instruction' missing"):
        sft_pipeline.with_options(config_path=str(config))()
    failed = [r for r in caplog.records if r.name.startswith("zenml.orchestrators") and r.levelname == "ERROR"]
    assert any("column 'instruction' missing" in r.getMessage() for r in failed)
    assert any("load_datasets failed" in r.getMessage() for r in failed)  # still says which step
    assert all(r.exc_info is None for r in failed) and "Traceback" not in caplog.text

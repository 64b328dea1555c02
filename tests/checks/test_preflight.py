"""Preflight counts the test split of local data, so too many held-out samples stop the run before it starts."""

import pytest

from twinsft.checks.preflight import check_data
from twinsft.config import RunConfig
from twinsft.errors import ConfigError, DataError


def config(sources: list[dict], eval_samples: int | None, test_size: float = 0.2) -> RunConfig:
    generation = {} if eval_samples is None else {"eval_samples": eval_samples}
    return RunConfig.model_validate({"data": {"sources": sources}, "split": {"test_size": test_size},
                                     "generation": generation})


def test_eval_samples_must_fit_the_counted_test_split(data_files):
    local = [{"name": "twin", "path": str(data_files[0])}, {"name": "general", "path": str(data_files[1])}]
    check_data(config(local, 8))  # 24 + 16 rows, 8 of them held out
    check_data(config(local, 0))
    with pytest.raises(ConfigError, match=r"generation.eval_samples 9 is more than the 8 rows of the test split "
                                          r"\(split.test_size 0.2 of 40 rows\)"):
        check_data(config(local, 9))
    sampled = [{**local[0], "limit": 10}, local[1]]  # counted after sampling: 26 rows, 5 held out
    with pytest.raises(ConfigError, match="more than the 5 rows of the test split"):
        check_data(config(sampled, 6))


def test_with_a_hub_source_the_step_checks_instead(data_files, tmp_path):
    sources = [{"name": "twin", "path": str(data_files[0])}, {"name": "hub", "hub_id": str(tmp_path)}]
    check_data(config(sources, 1000))  # the Hub rows are unknown until load_datasets reads them


def test_unset_eval_samples_fits_any_split(data_files):
    local = [{"name": "twin", "path": str(data_files[0])}, {"name": "general", "path": str(data_files[1])}]
    check_data(config(local, None, test_size=0.1))  # 40 rows, 4 held out: the step evaluates those 4
    with pytest.raises(ConfigError, match="more than the 4 rows of the test split"):
        check_data(config(local, 8, test_size=0.1))  # the same number, asked for explicitly


def test_one_row_in_all_stops_before_anything_loads(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text('{"instruction": "Say hi.", "output": "Hi."}\n')
    with pytest.raises(DataError, match=r"data.sources hold 1 row\(s\) in all; the train/test split needs at least 2"):
        check_data(config([{"name": "one", "path": str(one)}], None))

import json

import pytest
from datasets import Dataset

from tests.helpers import GENERAL_ROWS, TWIN_ROWS, load_mix, load_source, write_jsonl
from twinsft.config import DataSpec, SourceSpec
from twinsft.errors import DataError


def test_mix_concatenates_sources_in_order_with_counts(data_files):
    twin, general = data_files
    spec = DataSpec(sources=[SourceSpec(name="twin", path=str(twin)), SourceSpec(name="general", path=str(general))])
    ds, counts = load_mix(spec)
    assert counts == {"twin": len(TWIN_ROWS), "general": len(GENERAL_ROWS)}
    assert ds.column_names == ["instruction", "output", "source"]
    assert ds[0]["instruction"] == TWIN_ROWS[0]["instruction"]
    assert ds[len(TWIN_ROWS)]["output"] == GENERAL_ROWS[0]["output"]
    assert ds["source"][-1] == "general"


@pytest.mark.parametrize("suffix", [".json", ".parquet", ".csv"])
def test_other_local_formats(tmp_path, suffix):
    rows = [{"question": f"q{i}", "answer": f"a{i}", "extra": i} for i in range(5)]
    path = tmp_path / f"data{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"train": rows, "test": rows[:1]}))
    elif suffix == ".parquet":
        Dataset.from_list(rows).to_parquet(str(path))
    else:
        Dataset.from_list(rows).to_csv(str(path), index=False)
    spec = SourceSpec(name="qa", path=str(path), limit=3, columns={"instruction": "question", "output": "answer"})
    ds = load_source(spec)
    # limit samples 3 of the 5 rows (seeded), in file order, pairs intact.
    assert len(ds) == 3 and ds["instruction"][:] == sorted(ds["instruction"][:])
    assert [q[1:] for q in ds["instruction"][:]] == [a[1:] for a in ds["output"][:]]


def test_hub_code_path_on_a_local_dataset_directory(tmp_path):
    """`hub_id` goes through datasets.load_dataset, which reads a local dataset repo the same way."""
    repo = tmp_path / "user__llmtwin"
    (repo / "data").mkdir(parents=True)
    Dataset.from_list(TWIN_ROWS).to_parquet(str(repo / "data" / "train-00000.parquet"))
    ds = load_source(SourceSpec(name="llmtwin", hub_id=str(repo), split="train[:5]"))
    assert len(ds) == 5 and ds[4]["output"] == TWIN_ROWS[4]["output"]


def test_missing_column_names_the_source_and_lists_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "x", "answer": "y"}])
    with pytest.raises(
        DataError, match=r"'mine' \(.*d.jsonl\): column 'output' missing; it has \['instruction', 'answer'\]"
    ):
        load_source(SourceSpec(name="mine", path=str(path)))


def test_empty_values_are_counted_with_first_row(tmp_path):
    rows = [
        {"instruction": "a", "output": "b"}, {"instruction": "c", "output": " "}, {"instruction": "d", "output": ""}
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match="2 row\\(s\\) with empty or non-text 'output', first at row 1"):
        load_source(SourceSpec(name="s", path=str(path)))


def test_broken_json_line_is_reported_by_number(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": oops}\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_source(SourceSpec(name="s", path=str(path)))

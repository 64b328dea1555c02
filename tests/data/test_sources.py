"""Data sources without ZenML: local files and folders, the Hub code path, checks, sampling, fingerprints."""

import json

import pytest
from datasets import Dataset, DatasetDict

from tests.helpers import TWIN_ROWS, load_source, write_jsonl
from twinsft.cli.config_file import parse_parameters
from twinsft.config import DataSpec, SourceSpec
from twinsft.data.mix import check_local_source, load_checked, load_mix_report
from twinsft.data.sources.rows import fold_input
from twinsft.errors import ConfigError, DataError
from twinsft.pinning.data import resolve_data, source_fingerprint

ROWS = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(20)]


def spec(path, **kw) -> SourceSpec:
    return SourceSpec(name="mine", path=str(path), **kw)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"name": "s"}, "exactly one of hub_id, path or artifact"),
        ({"name": "s", "path": "a.jsonl", "artifact": "x"}, "(got path and artifact)"),
        ({"name": "s", "path": "a.jsonl", "revision": "main"}, "revision only applies to hub_id sources"),
        ({"name": "s", "hub_id": "u/d", "version": "3"}, "version only applies to artifact sources"),
        ({"name": "s", "path": "a.jsonl", "limit": 5, "fraction": 0.5}, "set limit or fraction, not both"),
        ({"name": "s", "path": "a.jsonl", "fraction": 1.5}, "parameters.data.sources.0.fraction"),
        ({"name": "s", "path": "a.jsonl", "columns": {"response": "a"}}, "columns may only map"),
    ],
)
def test_source_config_errors_name_the_source_and_field(source, message):
    with pytest.raises(ConfigError, match=None) as err:
        parse_parameters({"data": {"sources": [source]}})
    assert message in str(err.value)


def test_alpaca_input_is_folded_into_the_instruction(tmp_path):
    rows = [{"instruction": "Translate.", "input": "Bonjour", "output": "Hello"},
            {"instruction": "Say hi.", "input": "", "output": "Hi"},
            {"instruction": "Say bye.", "input": None, "output": "Bye"}]
    path = write_jsonl(tmp_path / "alpaca.jsonl", rows)
    ds, stats = load_checked(spec(path))
    assert ds["instruction"][:] == ["Translate.\n\n### Input:\nBonjour", "Say hi.", "Say bye."]
    assert stats.inputs_folded == 1 and stats.columns["input"] == "input"
    assert load_source(spec(path, columns={"input": None}))["instruction"][0] == "Translate."
    assert fold_input("Do it.", "   ") == "Do it."


def test_column_mapping_with_a_mapped_input_column(tmp_path):
    rows = [{"question": "Sum?", "context": "2 and 3", "answer": "5"}]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    ds = load_source(spec(path, columns={"instruction": "question", "output": "answer", "input": "context"}))
    assert ds[0] == {"instruction": "Sum?\n\n### Input:\n2 and 3", "output": "5", "source": "mine"}


def test_misspelt_column_suggests_the_closest_and_lists_what_exists(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "x", "ouptut": "y"}])
    with pytest.raises(DataError) as err:
        load_source(spec(path))
    msg = str(err.value)
    assert "data source 'mine'" in msg and str(path) in msg and "column 'output' missing" in msg
    assert "did you mean 'ouptut'?" in msg and "['instruction', 'ouptut']" in msg
    with pytest.raises(DataError, match=r"column 'answr' missing; did you mean 'answer'.*fix columns.output"):
        load_source(spec(write_jsonl(tmp_path / "e.jsonl", [{"instruction": "x", "answer": "y"}]),
                         columns={"output": "answr"}))


def test_non_text_values_are_counted_with_first_row_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "c", "output": 7}\n'
                    '{"instruction": "d", "output": ["x"]}\n')
    with pytest.raises(
        DataError, match=r"'mine' .*: 2 row\(s\) with empty or non-text 'output', first at row 1, line 3"
    ):
        load_source(spec(path))
    mapped = write_jsonl(tmp_path / "m.jsonl", [{"q": "a", "a": "b"}, {"q": None, "a": "c"}])
    with pytest.raises(
        DataError, match=r"1 row\(s\) with empty or non-text 'instruction' \(column 'q'\), first at row 1"
    ):
        load_source(spec(mapped, columns={"instruction": "q", "output": "a"}))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.jsonl", '{"instruction": "a", "output": "b"}\n{"instruction": oops}\n', "line 2 is not valid JSON"),
        ("d.jsonl", '["a", "b"]\n', "line 1 must be a JSON object"),
        ("d.json", '{"train": [\n{"instruction": "a",\n}]}', "line 3 is not valid JSON"),
        ("d.csv", 'instruction,output\na,b\nc,d,e\n', "line 3 has more fields than the header"),
        ("d.parquet", "not parquet", "not a readable parquet file"),
        ("d.txt", "hello", "'.txt' files are not supported"),
    ],
)
def test_broken_files_name_source_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as err:
        check_local_source(spec(path))
    assert f"data source 'mine' ({path})" in str(err.value) and message in str(err.value)


def test_duplicates_are_dropped_and_counted_unless_turned_off(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [*ROWS[:5], ROWS[1], {**ROWS[2], "output": ROWS[2]["output"] + " "}])
    ds, stats = load_checked(spec(path))
    assert len(ds) == 5 and stats.duplicates_dropped == 2 and stats.rows_read == 7
    ds, stats = load_checked(spec(path, dedupe=False))
    assert len(ds) == 7 and stats.duplicates_dropped == 0


def test_limit_and_fraction_sample_with_a_seed(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    first = load_source(spec(path, limit=5, seed=1))["instruction"][:]
    assert first == load_source(spec(path, limit=5, seed=1))["instruction"][:]
    assert first != load_source(spec(path, limit=5, seed=2))["instruction"][:]
    assert first != [r["instruction"] for r in ROWS[:5]]
    assert first == sorted(first, key=lambda q: int(q.split()[1][:-1]))
    assert load_source(spec(path, limit=5), seed=1)["instruction"][:] == first  # the default seed (training.seed)
    ds, stats = load_checked(spec(path, fraction=0.25, seed=0))
    assert len(ds) == 5 and stats.sampled_out == 15
    assert len(load_source(spec(path, limit=500))) == 20


def test_empty_sources_say_so(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match=r"'mine' \(.*empty.jsonl\) is empty: no rows"):
        check_local_source(spec(empty))
    path = write_jsonl(tmp_path / "d.jsonl", ROWS[:3])
    with pytest.raises(DataError, match=r"is empty after sampling: fraction 0.1 of 3 rows leaves no rows"):
        load_source(spec(path, fraction=0.1))


def test_json_export_with_splits_and_jsonl_saved_as_json(tmp_path):
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"train": ROWS[:4], "test": ROWS[4:6]}))
    assert load_source(spec(export, split="test"))["output"][:] == ["Answer 4.", "Answer 5."]
    with pytest.raises(DataError, match=r"no split 'validation' in the file; it has \['test', 'train'\]"):
        load_source(spec(export, split="validation"))
    lines = write_jsonl(tmp_path / "lines.json", ROWS[:3])
    assert len(load_source(spec(lines))) == 3


def test_folder_of_files_picks_the_split_by_name(tmp_path):
    folder = tmp_path / "llmtwin"
    (folder / "data").mkdir(parents=True)
    Dataset.from_list(ROWS[:6]).to_parquet(str(folder / "data" / "train-00000-of-00002.parquet"))
    Dataset.from_list(ROWS[6:10]).to_parquet(str(folder / "data" / "train-00001-of-00002.parquet"))
    write_jsonl(folder / "data" / "test.jsonl", ROWS[10:12])
    (folder / "README.md").write_text("not data")
    assert load_source(spec(folder))["instruction"][:] == [r["instruction"] for r in ROWS[:10]]
    assert len(load_source(spec(folder, split="test"))) == 2
    with pytest.raises(DataError, match=r"no files for split 'dev' in the folder; it has \['test', 'train'\]"):
        load_source(spec(folder, split="dev"))
    plain = tmp_path / "plain"
    plain.mkdir()
    write_jsonl(plain / "part-a.jsonl", ROWS[:2])
    (plain / "part-b.jsonl").write_text('{"instruction": "x", "output": "y"}\nbroken\n')
    with pytest.raises(DataError, match=r"'mine' \(.*plain\): part-b.jsonl: line 2 is not valid JSON"):
        check_local_source(spec(plain))


def test_save_to_disk_folder(tmp_path):
    folder = tmp_path / "saved"
    DatasetDict({"train": Dataset.from_list(ROWS[:3]), "test": Dataset.from_list(ROWS[3:4])}).save_to_disk(str(folder))
    assert check_local_source(spec(folder)) is None  # needs `datasets`: checked when loaded
    assert load_source(spec(folder, split="test"))["output"][:] == ["Answer 3."]


def test_hub_code_path_with_splits_mapping_and_sampling(tmp_path):
    """hub_id goes through datasets.load_dataset, which reads a local dataset repo exactly like a Hub one."""
    repo = tmp_path / "user__llmtwin"
    (repo / "data").mkdir(parents=True)
    qa = [{"question": r["instruction"], "answer": r["output"]} for r in ROWS]
    Dataset.from_list(qa[:16]).to_parquet(str(repo / "data" / "train-00000.parquet"))
    Dataset.from_list(qa[16:]).to_parquet(str(repo / "data" / "test-00000.parquet"))
    source = SourceSpec(name="llmtwin", hub_id=str(repo), split="test", columns={"instruction": "question",
                                                                                    "output": "answer"})
    assert load_source(source)["output"][:] == [r["output"] for r in ROWS[16:]]
    sampled, stats = load_checked(source.model_copy(update={"split": "train", "limit": 4, "seed": 3}))
    assert len(sampled) == 4 and stats.rows_read == 16 and stats.sampled_out == 12
    with pytest.raises(DataError, match=r"'llmtwin' \(Hub dataset .*: column 'instruction' missing.*'question'"):
        load_source(SourceSpec(name="llmtwin", hub_id=str(repo)))


def test_fingerprints_follow_content_not_paths_being_touched(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    before = source_fingerprint(spec(path))
    path.touch()
    assert source_fingerprint(spec(path)) == before
    write_jsonl(path, ROWS[:-1])
    assert source_fingerprint(spec(path)) != before
    folder = tmp_path / "f"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", ROWS)
    fp = source_fingerprint(spec(folder))
    write_jsonl(folder / "b.jsonl", ROWS[:1])
    assert source_fingerprint(spec(folder)) != fp


def test_resolve_pins_seeds_only_where_sampling_and_warns_on_unpinned_hub(tmp_path, caplog):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    data = DataSpec(sources=[
        SourceSpec(name="all", path=str(path)),
        SourceSpec(name="some", path=str(path), limit=3),
        SourceSpec(name="hub", hub_id="user/llmtwin"),
        SourceSpec(name="pinned", hub_id="user/llmtwin", revision="abc123"),
    ])
    a, b = resolve_data(data, default_seed=7), resolve_data(data, default_seed=8)
    assert [s.seed for s in a.data.sources] == [None, 7, None, None]
    assert a.sources["all"] == b.sources["all"] and a.sources["some"] != b.sources["some"]
    assert a.fingerprint != b.fingerprint and len(a.fingerprint) == 64
    assert len(a.warnings) == 1 and "'hub'" in a.warnings[0] and "revision" in a.warnings[0]
    assert "no revision pinned" in caplog.text


def test_mix_report_counts(tmp_path):
    twin = write_jsonl(tmp_path / "t.jsonl", TWIN_ROWS + TWIN_ROWS[:2])
    data = DataSpec(sources=[SourceSpec(name="twin", path=str(twin)),
                             SourceSpec(name="rows", path=str(write_jsonl(tmp_path / "r.jsonl", ROWS)), limit=5)])
    ds, report = load_mix_report(data)
    assert report.rows_per_source == {"twin": len(TWIN_ROWS), "rows": 5} and len(ds) == len(TWIN_ROWS) + 5
    assert report.stats["twin"].duplicates_dropped == 2 and ds["source"][-1] == "rows"

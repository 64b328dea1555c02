"""Preference pairs without ZenML or a model: sources, column mapping, checks, dedup, sampling, card, rendering."""

import json

import pytest
from datasets import Dataset

from tests.helpers import write_jsonl
from twinsft.cli.config_file import parse_parameters
from twinsft.config import DpoRunConfig, PreferenceDataSpec, PreferenceSourceSpec
from twinsft.data.alpaca import ALPACA
from twinsft.data.preference import demo
from twinsft.data.preference.card import build_preference_card
from twinsft.data.preference.formatting import instruction_of, render_pairs
from twinsft.data.preference.mix import check_local_pairs, load_preference_mix
from twinsft.errors import DataError

PAIRS = [{"prompt": f"Question {i}?", "chosen": f"Measured answer {i}.", "rejected": f"Guess {i}."} for i in range(20)]


def spec(path, **kw) -> PreferenceSourceSpec:
    return PreferenceSourceSpec(name="prefs", path=str(path), **kw)


def test_pairs_are_mapped_checked_and_mixed_in_order(tmp_path):
    other = [{"question": "Why?", "good": "Because I measured.", "bad": "Because."}]
    a = write_jsonl(tmp_path / "a.jsonl", PAIRS)
    b = write_jsonl(tmp_path / "b.jsonl", other)
    data = PreferenceDataSpec(sources=[spec(a), PreferenceSourceSpec(
        name="mapped", path=str(b), columns={"prompt": "question", "chosen": "good", "rejected": "bad"})])
    ds, report = load_preference_mix(data)
    assert ds.column_names == ["prompt", "chosen", "rejected", "source"]
    assert ds[20] == {"prompt": "Why?", "chosen": "Because I measured.", "rejected": "Because.", "source": "mapped"}
    assert report.metadata()["pairs_per_source"] == {"prefs": 20, "mapped": 1}


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "a", "reject": "b"}])
    with pytest.raises(DataError) as err:
        check_local_pairs(spec(path))
    message = str(err.value)
    assert "\n" not in message
    assert "column 'rejected' missing; did you mean 'reject'?" in message
    assert "['prompt', 'chosen', 'reject']" in message


def test_empty_value_names_the_first_row_and_line(tmp_path):
    rows = [*PAIRS[:3], {"prompt": "q", "chosen": "  ", "rejected": "b"},
            {"prompt": "q", "chosen": "", "rejected": "c"}]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(DataError, match=r"2 row\(s\) with empty or non-text 'chosen', first at row 3, line 4"):
        check_local_pairs(spec(path))


def test_equal_answers_are_counted_and_dropped_and_an_error_when_all_are(tmp_path):
    rows = [*PAIRS[:4], {"prompt": "q", "chosen": "same", "rejected": "same "}]
    stats = check_local_pairs(spec(write_jsonl(tmp_path / "p.jsonl", rows)))
    assert stats.identical_dropped == 1 and stats.rows == 4
    same = [{"prompt": "q", "chosen": "x", "rejected": "x"}] * 2
    with pytest.raises(DataError, match="in all 2 pairs 'chosen' equals 'rejected'"):
        check_local_pairs(spec(write_jsonl(tmp_path / "s.jsonl", same)))


def test_duplicates_dropped_and_seeded_sampling(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", PAIRS + PAIRS[:5])
    stats = check_local_pairs(spec(path))
    assert stats.duplicates_dropped == 5 and stats.rows == 20
    ds1, _ = load_preference_mix(PreferenceDataSpec(sources=[spec(path, limit=7, seed=3)]))
    ds2, report = load_preference_mix(PreferenceDataSpec(sources=[spec(path, limit=7, seed=3)]))
    assert ds1["prompt"][:] == ds2["prompt"][:] and len(ds1) == 7
    assert report.stats["prefs"].sampled_out == 13


def test_preference_columns_only(tmp_path):
    with pytest.raises(ValueError, match="columns may only map 'prompt', 'chosen', 'rejected'"):
        spec("p.jsonl", columns={"instruction": "q"})


def test_prompt_rendered_as_alpaca_and_answers_end_with_eos():
    ds = render_pairs(Dataset.from_list(PAIRS[:2]), eos_token="</s>")
    assert ds[0] == {"prompt": ALPACA.prompt("Question 0?"), "chosen": "Measured answer 0.</s>",
                     "rejected": "Guess 0.</s>"}
    assert instruction_of(ds[1]["prompt"]) == "Question 1?"
    with pytest.raises(ValueError, match="no EOS token"):
        render_pairs(Dataset.from_list(PAIRS[:1]), eos_token="")


def test_card_counts_drops_and_lengths(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [*PAIRS, PAIRS[0], {"prompt": "q", "chosen": "x", "rejected": "x"}])
    ds, report = load_preference_mix(PreferenceDataSpec(sources=[spec(path)]))
    card, lengths = build_preference_card(ds, report.stats, {"prefs": str(path)})
    assert "| prefs | " in card and "| 22 | 20 | 1 | 1 | 0 |" in card
    assert lengths["chosen"]["max"] == 3 and lengths["rejected"]["min"] == 2


def test_bundled_demo_pairs_match_the_code_that_makes_them():
    assert demo.DEMO_PAIRS.read_text() == demo.render_file()
    pairs = [json.loads(line) for line in demo.DEMO_PAIRS.read_text().splitlines()]
    assert len(pairs) >= 200
    twin = [json.loads(line) for line in demo.TWIN_ROWS.read_text().splitlines()]
    for pair, row in zip(pairs, twin, strict=True):
        answer = demo.first_sentence(row["output"])
        assert pair["prompt"] == row["instruction"] and row["output"].startswith(answer)
        assert pair["chosen"].startswith(answer + " ") and pair["rejected"].startswith(answer + " ")
        assert any(pair["chosen"].endswith(line) for line in demo.EVIDENCE_FIRST)
        assert any(pair["rejected"].endswith(line) for line in demo.OVERCONFIDENT)


def test_dpo_run_config_is_picked_by_its_sections():
    cfg = parse_parameters({"preference": {"sources": [{"name": "p", "path": "p.jsonl"}]}, "training": {"beta": 0.5}})
    assert isinstance(cfg, DpoRunConfig) and cfg.training.beta == 0.5 and cfg.start.artifact == "merged_model"

"""The dataset card of a mix: rows per source, length distribution, samples."""

import re

from tests.helpers import GENERAL_ROWS, TWIN_ROWS, write_jsonl
from twinsft.config import DataSpec, SourceSpec
from twinsft.data.dataset_card import build_card, histogram, length_summary, training_texts
from twinsft.data.mix import load_mix_report


def mix(tmp_path):
    twin = write_jsonl(tmp_path / "twin.jsonl", TWIN_ROWS + TWIN_ROWS[:3])
    general = write_jsonl(tmp_path / "general.jsonl", GENERAL_ROWS)
    data = DataSpec(sources=[SourceSpec(name="twin", path=str(twin)),
                             SourceSpec(name="general", path=str(general), limit=10, seed=0)])
    return load_mix_report(data)


def test_card_shows_rows_per_source_lengths_and_samples(tmp_path):
    ds, report = mix(tmp_path)
    card, lengths = build_card(ds, report.stats, origins={"twin": "twin.jsonl", "general": "general.jsonl"},
                               fingerprints={"twin": "a" * 64, "general": "b" * 64}, mix_fingerprint="c" * 64)
    assert "**34 rows** from 2 source(s)" in card and "`cccccccccccccccc`" in card
    assert re.search(r"\| twin \| twin.jsonl \| 27 \| 3 \| 0 \| 0 \| 24 \| 70.6% \| `aaaaaaaaaaaa` \|", card), card
    assert re.search(r"\| general \| general.jsonl \| 16 \| 0 \| 6 \| 0 \| 10 \| 29.4% \|", card), card
    assert "whitespace-separated words" in card
    words = [len(t.split()) for t in training_texts(ds)]
    assert lengths["all"]["max"] == max(words) and lengths["all"]["min"] == min(words)
    assert set(lengths) == {"all", "twin", "general"}
    histogram_rows = re.findall(r"^\| (\d+)–(\d+) \| (\d+) \|", card, flags=re.M)
    assert sum(int(n) for _, _, n in histogram_rows) == len(ds)
    assert "    " + TWIN_ROWS[0]["instruction"] in card and "**general**, row 24" in card


def test_card_counts_tokens_with_a_tokenizer_when_given(tmp_path):
    ds, report = mix(tmp_path)
    card, lengths = build_card(ds, report.stats, {}, {}, "0" * 64, count_tokens=lambda texts: [len(t) for t in texts],
                               tokenizer_name="char")
    assert "in tokens (char tokenizer)" in card
    assert lengths["all"]["max"] == max(len(t) for t in training_texts(ds))


def test_length_helpers():
    assert length_summary([5, 1, 3, 2, 4]) == {"min": 1, "p50": 3, "p90": 5, "p99": 5, "max": 5, "mean": 3.0}
    assert histogram([1, 1, 2, 9], bins=3) == [(1, 3, 3), (4, 6, 0), (7, 9, 1)]
    assert histogram([4, 4]) == [(4, 4, 2)]

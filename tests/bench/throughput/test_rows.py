"""The lengths of the rows a benchmark case trains on: log-normal by median, or a mix's histogram."""

import pytest

from bench.throughput.cases import MAX_LEN, MIN_LEN
from bench.throughput.rows import sample_lengths


def test_lognormal_lengths_by_median():
    for median in (100, 350, 1000):
        lengths = sorted(sample_lengths(f"len{median}", 3000 * median))  # ~2,000 samples
        assert sum(lengths) >= 3000 * median and MIN_LEN <= lengths[0] and lengths[-1] <= MAX_LEN
        assert abs(lengths[len(lengths) // 2] - median) < 0.08 * median
    assert sample_lengths("len350", 50_000) == sample_lengths("len350", 50_000)  # seeded


def test_histogram_file_from_a_mix_drives_the_lengths(tmp_path, tiny_model_dir, data_files):
    """The mix's histogram as the dataset card counts it, exported, read back and sampled by the benchmark."""
    import json

    from bench.length_histogram import main as export
    from tests.helpers import tiny_parameters, write_config
    from twinsft.data.dataset_card import read_length_histogram

    config = write_config(tmp_path / "run.yaml", tiny_parameters(tiny_model_dir, *data_files, tmp_path))
    assert export(["--config", str(config), "--out", str(tmp_path / "h.json"), "--bins", "4"]) == 0
    saved = json.loads((tmp_path / "h.json").read_text())
    buckets = read_length_histogram(tmp_path / "h.json")
    assert len(buckets) == 4 and sum(n for _, _, n in buckets) == saved["rows"] > 0
    assert buckets[0][0] == saved["summary"]["min"] and buckets[-1][1] >= saved["summary"]["max"]

    drawn = sample_lengths("hist", 20_000, histogram=[(10, 19, 3), (100, 109, 0), (200, 200, 1)])
    assert set(drawn) <= set(range(10, 20)) | {200}
    assert 0.65 < sum(n < 20 for n in drawn) / len(drawn) < 0.85  # a bucket is drawn by its share of rows

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**saved, "buckets": [[5, 2, 1]]}))
    with pytest.raises(ValueError, match="'buckets' must be"):
        read_length_histogram(bad)
    assert export(["--config", str(tmp_path / "missing.yaml"), "--out", str(bad)]) == 2

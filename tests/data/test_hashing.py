"""A dataset's content hash: rows, not fingerprints."""

from datasets import Dataset

from twinsft.data.hashing import content_hash


def test_dataset_content_hash_sees_rows_not_fingerprints():
    rows = [{"text": f"row {i}"} for i in range(10)]
    a = Dataset.from_list(rows)
    b = a.map(lambda r: r)  # same rows, new fingerprint
    assert a._fingerprint != b._fingerprint and content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(Dataset.from_list([*rows[:-1], {"text": "other"}]))
    shuffled = a.shuffle(seed=0)
    assert content_hash(shuffled) == content_hash(Dataset.from_list(shuffled.to_list()))

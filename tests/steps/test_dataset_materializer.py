"""The Dataset materializer: what it saves loads back row for row."""

from datasets import Dataset

from twinsft.data.hashing import content_hash


def test_materializer_round_trip(tmp_path):
    from twinsft.steps.dataset_materializer import DatasetMaterializer

    ds = Dataset.from_list([{"text": f"row {i}", "n": i} for i in range(7)]).shuffle(seed=3)
    mat = DatasetMaterializer(uri=str(tmp_path))
    mat.save(ds)
    back = mat.load(Dataset)
    assert back.to_list() == ds.to_list() and content_hash(back) == content_hash(ds)

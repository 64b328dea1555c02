from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.caching import split_code
from twinsft.config import SplitSpec
from twinsft.formatting import split_dataset
from twinsft.materializers import DatasetMaterializer


@step(output_materializers=DatasetMaterializer, cache_policy=CachePolicy(cache_func=split_code))
def split(
    dataset: Dataset, split: SplitSpec
) -> tuple[Annotated[Dataset, "train_dataset"], Annotated[Dataset, "test_dataset"]]:
    """Seeded train/test split."""
    train, test = split_dataset(dataset, test_size=split.test_size, seed=split.seed)
    for name, part in (("train_dataset", train), ("test_dataset", test)):
        log_metadata({"rows": len(part), "seed": split.seed}, infer_artifact=True, artifact_name=name)
    return train, test

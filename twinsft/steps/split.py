"""Step `split`: the seeded train/test split of the formatted rows."""

from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.config import SplitSpec
from twinsft.data.formatting import split_dataset
from twinsft.pinning.code import code_key_of
from twinsft.steps.dataset_materializer import DatasetMaterializer

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


# A mapping, not one class: ZenML 0.98 expands a single materializer over a set of output names, whose
# order (and so the cache key) changes between processes, so `split` missed the cache half the time.
@step(
    output_materializers={"train_dataset": DatasetMaterializer, "test_dataset": DatasetMaterializer},
    cache_policy=CachePolicy(cache_func=code_key),
)
def split(
    dataset: Dataset, split: SplitSpec
) -> tuple[Annotated[Dataset, "train_dataset"], Annotated[Dataset, "test_dataset"]]:
    """Seeded train/test split."""
    train, test = split_dataset(dataset, test_size=split.test_size, seed=split.seed)
    for name, part in (("train_dataset", train), ("test_dataset", test)):
        log_metadata({"rows": len(part), "seed": split.seed}, infer_artifact=True, artifact_name=name)
    return train, test

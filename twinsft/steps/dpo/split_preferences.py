"""Step `split_preferences`: the seeded train/test split of the formatted pairs."""

from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.config import SplitSpec
from twinsft.data.formatting import split_dataset
from twinsft.pinning.code import code_key_of
from twinsft.steps.dataset_materializer import DatasetMaterializer

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


# A mapping, not one class: see steps/split.py (output order and the cache key).
@step(
    output_materializers={"dpo_train_pairs": DatasetMaterializer, "dpo_test_pairs": DatasetMaterializer},
    cache_policy=CachePolicy(cache_func=code_key),
)
def split_preferences(
    dataset: Dataset, split: SplitSpec
) -> tuple[Annotated[Dataset, "dpo_train_pairs"], Annotated[Dataset, "dpo_test_pairs"]]:
    """Seeded train/test split of the pairs (the held-out ones are evaluated, never trained on)."""
    train, test = split_dataset(dataset, test_size=split.test_size, seed=split.seed)
    for name, part in (("dpo_train_pairs", train), ("dpo_test_pairs", test)):
        log_metadata({"pairs": len(part), "seed": split.seed}, infer_artifact=True, artifact_name=name)
    return train, test

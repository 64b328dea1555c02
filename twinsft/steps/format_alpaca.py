from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.caching import format_code
from twinsft.config import ModelSource
from twinsft.formatting import format_alpaca as render
from twinsft.materializers import DatasetMaterializer
from twinsft.models import load_tokenizer


@step(output_materializers=DatasetMaterializer, cache_policy=CachePolicy(cache_func=format_code))
def format_alpaca(raw: Dataset, tokenizer_source: ModelSource) -> Annotated[Dataset, "sft_dataset"]:
    """Alpaca prompt + response + the base tokenizer's EOS token, one `text` row per sample."""
    tokenizer = load_tokenizer(tokenizer_source)
    ds = render(raw, eos_token=tokenizer.eos_token)
    lengths = [len(ids) for ids in tokenizer(list(ds["text"]), add_special_tokens=False)["input_ids"]]
    log_metadata(
        {
            "eos_token": tokenizer.eos_token,
            "tokens": sum(lengths),
            "tokens_per_row_mean": round(sum(lengths) / len(lengths), 1),
            "tokens_per_row_max": max(lengths),
        },
        infer_artifact=True,
        artifact_name="sft_dataset",
    )
    return ds

"""Step `format_alpaca`: one Alpaca training text per row, ending with the base tokenizer's EOS."""

from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.config import ModelSource
from twinsft.data.formatting import render_alpaca
from twinsft.models import load_tokenizer, token_lengths
from twinsft.pinning.code import code_key_of
from twinsft.steps.dataset_materializer import DatasetMaterializer

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(output_materializers=DatasetMaterializer, cache_policy=CachePolicy(cache_func=code_key))
def format_alpaca(raw: Dataset, tokenizer_source: ModelSource) -> Annotated[Dataset, "sft_dataset"]:
    """Alpaca prompt + response + the base tokenizer's EOS token, one `text` row per sample."""
    tokenizer = load_tokenizer(tokenizer_source)
    ds = render_alpaca(raw, eos_token=tokenizer.eos_token)
    lengths = token_lengths(tokenizer, list(ds["text"]))
    log_metadata(
        {
            "eos_token": tokenizer.eos_token,
            "model_revision": tokenizer_source.weights_id(),  # pinned at submit: Hub commit or local files' digest
            "tokens": sum(lengths),
            "tokens_per_row_mean": round(sum(lengths) / len(lengths), 1),
            "tokens_per_row_max": max(lengths),
        },
        infer_artifact=True,
        artifact_name="sft_dataset",
    )
    return ds

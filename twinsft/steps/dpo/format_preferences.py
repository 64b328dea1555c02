"""Step `format_preferences`: the Alpaca prompt of the SFT stage, both answers ending with the tokenizer's EOS."""

from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.config import ModelSource
from twinsft.data.preference.formatting import render_pairs
from twinsft.models import load_tokenizer
from twinsft.pinning.code import code_key_of
from twinsft.steps.dataset_materializer import DatasetMaterializer

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(output_materializers=DatasetMaterializer, cache_policy=CachePolicy(cache_func=code_key))
def format_preferences(raw: Dataset, tokenizer_source: ModelSource) -> Annotated[Dataset, "dpo_dataset"]:
    """prompt -> Alpaca prompt (response slot empty); chosen and rejected + EOS."""
    tokenizer = load_tokenizer(tokenizer_source)
    ds = render_pairs(raw, eos_token=tokenizer.eos_token)
    log_metadata({"eos_token": tokenizer.eos_token, "pairs": len(ds), "model_revision": tokenizer_source.weights_id()},
                 infer_artifact=True, artifact_name="dpo_dataset")
    return ds

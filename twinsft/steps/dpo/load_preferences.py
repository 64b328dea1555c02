"""Step `load_preferences`: every preference source read, checked and mixed, and the mix's dataset card."""

from functools import partial
from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.types import MarkdownString

from twinsft.config import ModelSource, PreferenceDataSpec
from twinsft.data.hashing import content_hash
from twinsft.data.preference.card import build_preference_card
from twinsft.data.preference.mix import load_preference_mix
from twinsft.data.sources.rows import origin
from twinsft.models import load_tokenizer, token_lengths
from twinsft.pinning.code import code_key_of
from twinsft.steps.dataset_materializer import DatasetMaterializer

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(output_materializers={"raw_preferences": DatasetMaterializer}, cache_policy=CachePolicy(cache_func=code_key))
def load_preferences(
    data: PreferenceDataSpec,
    fingerprint: str,
    tokenizer_source: ModelSource | None = None,
) -> tuple[Annotated[Dataset, "raw_preferences"], Annotated[MarkdownString, "preference_card"]]:
    """Every source, columns mapped to prompt/chosen/rejected, checked (pairs with equal answers and duplicates
    dropped and counted), sampled, concatenated; and the card. `fingerprint` keys the cache on the sources' data."""
    ds, report = load_preference_mix(data)
    count = partial(token_lengths, load_tokenizer(tokenizer_source)) if tokenizer_source is not None else None
    card, lengths = build_preference_card(ds, report.stats, {s.name: origin(s) for s in data.sources}, count)
    log_metadata({**report.metadata(), "fingerprint": fingerprint, "content_sha256": content_hash(ds),
                  "length_unit": "tokens" if count else "whitespace words", "length": lengths},
                 infer_artifact=True, artifact_name="raw_preferences")
    return ds, MarkdownString(card)

"""Step `load_datasets`: every data source read, checked and mixed, and the mix's dataset card."""

from functools import partial
from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.types import MarkdownString

from twinsft.config import DataSpec, ModelSource
from twinsft.data.dataset_card import build_card
from twinsft.data.hashing import content_hash
from twinsft.data.mix import load_mix_report
from twinsft.data.sources.rows import origin
from twinsft.models import load_tokenizer, token_lengths
from twinsft.pinning.code import code_key_of
from twinsft.steps.dataset_materializer import DatasetMaterializer

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(output_materializers={"raw_dataset": DatasetMaterializer}, cache_policy=CachePolicy(cache_func=code_key))
def load_datasets(
    data: DataSpec,
    fingerprint: str,
    source_fingerprints: dict[str, str] | None = None,
    tokenizer_source: ModelSource | None = None,
) -> tuple[Annotated[Dataset, "raw_dataset"], Annotated[MarkdownString, "dataset_card"]]:
    """Every configured source, columns mapped to instruction/output, checked, deduplicated, sampled, concatenated;
    and the mix's dataset card (lengths in the tokenizer's tokens when `tokenizer_source` is given).

    `fingerprint` (file contents, Hub ids and revisions, artifact version ids) is here to key the cache.
    """
    ds, report = load_mix_report(data)
    count_tokens = None
    if tokenizer_source is not None:
        count_tokens = partial(token_lengths, load_tokenizer(tokenizer_source))
    card, lengths = build_card(
        ds,
        report.stats,
        origins={s.name: origin(s) for s in data.sources},
        fingerprints=source_fingerprints or {},
        mix_fingerprint=fingerprint,
        count_tokens=count_tokens,
        tokenizer_name=tokenizer_source.name if tokenizer_source is not None else None,
    )
    log_metadata(
        {
            **report.metadata(),
            "fingerprint": fingerprint,
            "source_fingerprints": source_fingerprints or {},
            "content_sha256": content_hash(ds),
            "source_revisions": {s.name: s.revision or "-" for s in data.sources if s.hub_id},
            "model_revision": tokenizer_source.weights_id() if tokenizer_source is not None else "-",
            "length_unit": "tokens" if count_tokens else "whitespace words",
            "length": lengths["all"],
        },
        infer_artifact=True,
        artifact_name="raw_dataset",
    )
    return ds, MarkdownString(card)

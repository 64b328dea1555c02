from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.types import MarkdownString

from twinsft.caching import load_code
from twinsft.config import DataSpec, ModelSource
from twinsft.data import load_mix_report
from twinsft.dataset_card import build_card
from twinsft.materializers import DatasetMaterializer, content_hash
from twinsft.sources.table import origin


@step(output_materializers={"raw_dataset": DatasetMaterializer}, cache_policy=CachePolicy(cache_func=load_code))
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
    count_tokens, tokenizer_name = None, None
    if tokenizer_source is not None:
        from twinsft.models import load_tokenizer

        tokenizer = load_tokenizer(tokenizer_source)
        tokenizer_name = tokenizer_source.name

        def count_tokens(texts: list[str]) -> list[int]:
            return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    fingerprints = source_fingerprints or {}
    card, lengths = build_card(
        ds,
        report.stats,
        origins={s.name: origin(s) for s in data.sources},
        fingerprints=fingerprints,
        mix_fingerprint=fingerprint,
        count_tokens=count_tokens,
        tokenizer_name=tokenizer_name,
    )
    log_metadata(
        {
            "rows": len(ds),
            "rows_per_source": report.rows_per_source,
            "duplicates_dropped": {n: s.duplicates_dropped for n, s in report.stats.items()},
            "sampled_out": {n: s.sampled_out for n, s in report.stats.items()},
            "fingerprint": fingerprint,
            "source_fingerprints": fingerprints,
            "content_sha256": content_hash(ds),
            "length_unit": "tokens" if count_tokens else "whitespace words",
            "length": lengths["all"],
        },
        infer_artifact=True,
        artifact_name="raw_dataset",
    )
    return ds, MarkdownString(card)

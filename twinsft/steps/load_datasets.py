from typing import Annotated

from datasets import Dataset
from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.caching import load_code
from twinsft.config import DataSpec
from twinsft.data import load_mix
from twinsft.materializers import DatasetMaterializer


@step(output_materializers=DatasetMaterializer, cache_policy=CachePolicy(cache_func=load_code))
def load_datasets(data: DataSpec, fingerprint: str) -> Annotated[Dataset, "raw_dataset"]:
    """Every configured source, columns mapped to instruction/output, validated, concatenated.

    `fingerprint` (local file contents, Hub ids and revisions) is only here to key the cache.
    """
    ds, counts = load_mix(data)
    log_metadata(
        {"rows": len(ds), "rows_per_source": counts, "fingerprint": fingerprint},
        infer_artifact=True,
        artifact_name="raw_dataset",
    )
    return ds

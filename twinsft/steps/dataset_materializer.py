"""How the pipeline stores a `datasets.Dataset`: parquet in the artifact store, keyed by a content hash.

ZenML's HF materializer has no content hash (and only activates with the whole HF integration
installed), so a rerun of an upstream step would invalidate everything downstream even when the
data did not change. Hashing the rows keeps `split` and `train_sft` cached in that case.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, ClassVar

import pyarrow.parquet as pq
from datasets import Dataset
from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from twinsft.data.hashing import arrow_table, content_hash

FILENAME = "data.parquet"


class DatasetMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Dataset,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: Dataset) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, FILENAME)
            pq.write_table(arrow_table(data), local)
            fileio.copy(local, os.path.join(self.uri, FILENAME), overwrite=True)

    def load(self, data_type: type[Any]) -> Dataset:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, FILENAME)
            fileio.copy(os.path.join(self.uri, FILENAME), local)
            return Dataset(pq.read_table(local))  # in memory: safe after tmp is gone

    def compute_content_hash(self, data: Dataset) -> str:
        return content_hash(data)

    def extract_metadata(self, data: Dataset) -> dict[str, Any]:
        return {"num_rows": len(data), "columns": list(data.column_names)}

"""A ZenML materializer for `datasets.Dataset` with a content hash.

ZenML's own HF materializer has no content hash (and only activates with the whole HF integration
installed), so a rerun of an upstream step would invalidate everything downstream even when the data
did not change. Hashing the rows keeps `split` and `train_sft` cached in that case.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset
from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

FILENAME = "data.parquet"


def _table(ds: Dataset) -> pa.Table:
    """The rows as they read (shuffles and selections applied), in one chunk per column."""
    if ds._indices is not None:
        ds = ds.flatten_indices()
    return ds.data.table.combine_chunks()


def content_hash(ds: Dataset) -> str:
    """sha256 of the features and the rows; not of the schema metadata, which holds a random fingerprint."""
    h = hashlib.sha256(json.dumps(ds.features.to_dict(), sort_keys=True).encode())
    table = _table(ds).replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


class DatasetMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Dataset,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: Dataset) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, FILENAME)
            pq.write_table(_table(data), local)
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

"""The content hash of a dataset's rows: what ZenML keys downstream caching with, and the checkpoint folders."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset


def arrow_table(ds: Dataset) -> pa.Table:
    """The rows as they read (shuffles and selections applied), in one chunk per column."""
    if ds._indices is not None:
        ds = ds.flatten_indices()
    return ds.data.table.combine_chunks()


def content_hash(ds: Dataset) -> str:
    """sha256 of the features and the rows; not of the schema metadata, which holds a random fingerprint."""
    import pyarrow as pa

    h = hashlib.sha256(json.dumps(ds.features.to_dict(), sort_keys=True).encode())
    table = arrow_table(ds).replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()

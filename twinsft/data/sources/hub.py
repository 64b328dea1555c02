"""Hub datasets through `datasets.load_dataset`: the real code path (a local dataset repo takes it too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twinsft.config import SourceSpec
from twinsft.data.sources.rows import RawTable

if TYPE_CHECKING:
    from datasets import Dataset


def table_from_dataset(ds: Dataset) -> RawTable:
    """Columns are pulled only when a check or the mix needs them."""
    return RawTable(list(ds.column_names), len(ds), lambda c: ds[c][:])


def read_hub(spec: SourceSpec) -> RawTable:
    from datasets import load_dataset

    kwargs: dict[str, Any] = {"split": spec.split, "revision": spec.revision}
    if spec.config_name:
        kwargs["name"] = spec.config_name
    return table_from_dataset(load_dataset(spec.hub_id, **kwargs))


def read_saved(path: str, split: str) -> RawTable:
    """A folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    from datasets import DatasetDict, load_from_disk

    from twinsft.errors import DataError

    saved = load_from_disk(path)
    if isinstance(saved, DatasetDict):
        if split not in saved:
            raise DataError(f"no split '{split}' in the saved dataset; it has {sorted(saved)}; set split")
        saved = saved[split]
    return table_from_dataset(saved)

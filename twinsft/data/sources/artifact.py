"""ZenML artifacts by name and version: how an upstream pipeline (LLM Twin's dataset generation) hands data over."""

from __future__ import annotations

from typing import Any

from twinsft.config import SourceSpec
from twinsft.data.sources.hub import table_from_dataset
from twinsft.data.sources.rows import RawTable, describe
from twinsft.errors import DataError


def find_version(spec: SourceSpec) -> Any:
    """The artifact version a source means (the latest when `version` is unset), or a DataError.

    Uses the list API: `Client.get_artifact_version` returns a lazy placeholder inside a pipeline definition,
    and the pipeline resolves versions while it is being built, to key the cache.
    """
    from zenml.client import Client

    found = Client().list_artifact_versions(name=spec.artifact, version=spec.version, sort_by="desc:created", size=1)
    if not found.items:
        which = f"version '{spec.version}' of " if spec.version else ""
        raise DataError(
            f"{describe(spec)}: no {which}artifact named '{spec.artifact}' in this ZenML store; "
            "run the pipeline that produces it, or check the name with `zenml artifact list`"
        )
    return found.items[0]


def as_table(obj: Any, split: str, where: str) -> RawTable:
    """Whatever the upstream step returned: a Dataset or DatasetDict, a DataFrame, records, splits of records,
    columns of lists, or an object with `to_huggingface()` (LLM Twin's instruct dataset split)."""
    if hasattr(obj, "to_huggingface") and callable(obj.to_huggingface):
        obj = obj.to_huggingface()
    is_dataset = all(hasattr(obj, a) for a in ("column_names", "num_rows", "select"))
    if is_dataset and not isinstance(obj, dict):
        return table_from_dataset(obj)
    if hasattr(obj, "to_dict") and hasattr(obj, "columns") and hasattr(obj, "iloc"):  # a pandas DataFrame
        return RawTable.from_columns(obj.to_dict(orient="list"))
    if isinstance(obj, dict) or (hasattr(obj, "keys") and hasattr(obj, "__getitem__")):
        keys = list(obj.keys())
        values = [obj[k] for k in keys]
        if keys and all(isinstance(v, list) for v in values) and not all(
            isinstance(r, dict) for v in values for r in v
        ):
            return RawTable.from_columns(dict(zip(keys, values, strict=True)))
        if split not in keys:
            raise DataError(f"{where}: no split '{split}' in the artifact; it has {sorted(map(str, keys))}; set split")
        return as_table(obj[split], split, where)
    if isinstance(obj, list) and all(isinstance(r, dict) for r in obj):
        return RawTable.from_rows(obj)
    raise DataError(
        f"{where}: holds a {type(obj).__name__}; expected a datasets Dataset/DatasetDict, a DataFrame or "
        "a list of {instruction, output} records"
    )


def read_artifact(spec: SourceSpec) -> RawTable:
    from zenml.client import Client

    version = find_version(spec)
    # get_artifact_version inside a step links the version to the step run: the dashboard shows where data came from.
    loaded = Client().get_artifact_version(version.id).load()
    return as_table(loaded, spec.split, describe(spec))

"""Load instruction datasets from the Hub or local files into one `instruction`/`output` table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import DataSpec, SourceSpec
from twinsft.errors import DataError
from twinsft.progress import each

if TYPE_CHECKING:
    from datasets import Dataset

COLUMNS = ("instruction", "output")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg}); fix or remove it") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {lineno} must be a JSON object with instruction/output keys")
            rows.append(row)
    return rows


def _read_json(path: Path, split: str) -> list[dict[str, Any]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno} is not valid JSON ({exc.msg})") from None
    if isinstance(payload, dict):  # a {"train": [...], "test": [...]} export
        if split not in payload:
            raise DataError(f"{path}: no split '{split}' in the file; it has {sorted(payload)}")
        payload = payload[split]
    if not isinstance(payload, list):
        raise DataError(f"{path}: expected a list of records or an object of splits")
    return payload


def read_local(path: Path, split: str = "train") -> Dataset:
    from datasets import Dataset

    if not path.is_file():
        raise DataError(f"data file '{path}' not found; fix data.sources[].path")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return Dataset.from_list(_read_jsonl(path))
    if suffix == ".json":
        return Dataset.from_list(_read_json(path, split))
    if suffix == ".parquet":
        return Dataset.from_parquet(str(path))
    if suffix == ".csv":
        return Dataset.from_csv(str(path))
    raise DataError(f"data file '{path}': unsupported type '{suffix}'; use one of {', '.join(LOCAL_SUFFIXES)}")


def read_hub(spec: SourceSpec) -> Dataset:
    """`load_dataset` on a Hub id (or a local dataset directory: the same code path, used in tests)."""
    from datasets import load_dataset

    return load_dataset(spec.hub_id, split=spec.split, revision=spec.revision)


def to_instruction_table(ds: Dataset, spec: SourceSpec) -> Dataset:
    """Rename the source's columns to instruction/output, check every value, drop the rest."""
    mapping = {ours: spec.columns.get(ours, ours) for ours in COLUMNS}
    for ours, theirs in mapping.items():
        if theirs not in ds.column_names:
            hint = f" (map it with columns: {{{ours}: <column>}})" if ours == theirs else ""
            raise DataError(
                f"data source '{spec.name}': column '{theirs}' missing{hint}; it has {ds.column_names}"
            )
    ds = ds.select_columns(list(mapping.values()))
    ds = ds.rename_columns({theirs: ours for ours, theirs in mapping.items() if theirs != ours})
    for column in COLUMNS:
        values = ds[column]
        bad = [i for i, v in enumerate(values) if not isinstance(v, str) or not v.strip()]
        if bad:
            raise DataError(
                f"data source '{spec.name}': {len(bad)} row(s) with empty or non-text '{column}', "
                f"first at row {bad[0]}; clean them or drop those rows"
            )
    if spec.limit is not None:
        ds = ds.select(range(min(spec.limit, len(ds))))
    if len(ds) == 0:
        raise DataError(f"data source '{spec.name}' has no rows; check its split and limit")
    return ds


def load_source(spec: SourceSpec) -> Dataset:
    raw = read_local(Path(spec.path).expanduser(), spec.split) if spec.path else read_hub(spec)
    table = to_instruction_table(raw, spec)
    return table.add_column("source", [spec.name] * len(table))


def load_mix(spec: DataSpec) -> tuple[Dataset, dict[str, int]]:
    """Every source, validated and concatenated in config order; returns rows per source too."""
    from datasets import concatenate_datasets

    parts = [load_source(s) for s in each(spec.sources, "data source", label=lambda s: s.name)]
    counts = {s.name: len(p) for s, p in zip(spec.sources, parts)}
    return concatenate_datasets(parts), counts

"""Local files and folders, read with the standard library (and pyarrow for parquet): no torch, datasets or
ZenML, so preflight reads them too and rejects bad data before anything heavy loads."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from twinsft.data.sources.rows import RawTable
from twinsft.errors import DataError

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
SPLIT_NAMES = ("train", "test", "validation", "valid", "dev", "eval")
# `datasets.Dataset.save_to_disk` / `DatasetDict.save_to_disk` leave one of these behind.
SAVED_MARKERS = ("dataset_dict.json", "state.json")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in SAVED_MARKERS)


def _read_jsonl(path: Path, text: str | None = None) -> tuple[list[dict[str, Any]], list[int]]:
    rows, lines = [], []
    source = text.splitlines() if text is not None else path.open(encoding="utf-8-sig")
    for lineno, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"line {lineno} is not valid JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(row, dict):
            raise DataError(f"line {lineno} must be a JSON object (one record per line), got {type(row).__name__}")
        rows.append(row)
        lines.append(lineno)
    return rows, lines


def _read_json(path: Path, split: str) -> tuple[list[dict[str, Any]], list[int] | None]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines saved as .json
            return _read_jsonl(path, text)
        raise DataError(f"line {exc.lineno} is not valid JSON ({exc.msg}); fix the file") from None
    if isinstance(payload, dict) and payload and all(isinstance(v, list) for v in payload.values()):
        if all(isinstance(r, dict) for v in payload.values() for r in v):  # {"train": [...], "test": [...]}
            if split not in payload:
                raise DataError(f"no split '{split}' in the file; it has {sorted(payload)}; set split")
            payload = payload[split]
        else:  # {"instruction": [...], "output": [...]}: columns
            table = RawTable.from_columns(payload)
            return [{c: table.fetch(c)[i] for c in table.column_names} for i in range(table.num_rows)], None
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise DataError('expected a list of records, {"train": [...], "test": [...]} or columns of lists')
    return payload, None


def _read_csv(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    rows, lines = [], []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            if None in row:
                raise DataError(f"line {reader.line_num} has more fields than the header; quote fields with commas")
            rows.append(row)
            lines.append(reader.line_num)
    return rows, lines


def _read_parquet(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"not a readable parquet file ({exc})") from None
    return RawTable(table.column_names, table.num_rows, lambda c: table.column(c).to_pylist())


def read_file(path: Path, split: str = "train") -> RawTable:
    """One file; errors say what is wrong inside it (the caller prefixes which source and file)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".jsonl":
        rows, lines = _read_jsonl(path)
    elif suffix == ".json":
        rows, lines = _read_json(path, split)
    elif suffix == ".csv":
        rows, lines = _read_csv(path)
    else:
        raise DataError(f"'{suffix}' files are not supported; use {', '.join(SUFFIXES)}")
    return RawTable.from_rows(rows, lines)


def _split_of(relative: Path) -> str | None:
    """The split a file in a dataset folder belongs to, by Hub conventions (train.jsonl, data/train-0000.parquet,
    test/part-0.csv); None when its name does not say."""
    for part in (*relative.parent.parts, relative.stem):
        m = re.match(rf"^({'|'.join(SPLIT_NAMES)})(?:[-_.].*)?$", part.lower())
        if m:
            return m.group(1)
    return None


def data_files(folder: Path, split: str) -> list[Path]:
    """The folder's data files for `split`: the ones named for it, or all of them when none is named for a split."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise DataError(f"no {', '.join(SUFFIXES)} files in the folder")
    named = {f: _split_of(f.relative_to(folder)) for f in files}
    splits = sorted({s for s in named.values() if s})
    if not splits:
        if split != "train":
            raise DataError(f"the folder's files are not named for splits, so split '{split}' does not exist; "
                            "remove split or name files like test.jsonl")
        return files
    chosen = [f for f, s in named.items() if s == split]
    if not chosen:
        raise DataError(f"no files for split '{split}' in the folder; it has {splits}; set split")
    return chosen


def read_local(path: Path, split: str = "train") -> tuple[RawTable, list[Path]]:
    """A file or a folder of files (concatenated in name order). Returns the table and the files read."""
    if path.is_file():
        if split != "train" and path.suffix.lower() != ".json":
            raise DataError(f"a single {path.suffix} file has no splits, so split '{split}' does not apply; remove it")
        return read_file(path, split), [path]
    files = data_files(path, split)
    tables = []
    for f in files:
        try:
            tables.append(read_file(f, split))
        except DataError as exc:
            raise DataError(f"{f.relative_to(path)}: {exc}") from None
    if len(tables) == 1:
        return tables[0], files
    names: dict[str, None] = {}
    for t in tables:
        names.update(dict.fromkeys(t.column_names))
    lines = None  # a row's line is ambiguous across files

    def fetch(column: str) -> list[Any]:
        out: list[Any] = []
        for t in tables:
            out.extend(t.fetch(column) if column in t.column_names else [None] * t.num_rows)
        return out

    return RawTable(list(names), sum(t.num_rows for t in tables), fetch, lines), files

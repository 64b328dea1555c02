"""One source's rows, checked and shaped into instruction/output pairs. Pure Python, no heavy imports."""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twinsft.config import SourceSpec
from twinsft.errors import DataError

REQUIRED = ("instruction", "output")


@dataclass
class RawTable:
    """A source as read: column names, row count, and columns fetched on demand (wide Hub data stays lazy)."""

    column_names: list[str]
    num_rows: int
    fetch: Callable[[str], list[Any]]
    lines: list[int] | None = None  # 1-based line of each row in its file, where that means something

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], lines: list[int] | None = None) -> RawTable:
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        return cls(list(names), len(rows), lambda c: [r.get(c) for r in rows], lines)

    @classmethod
    def from_columns(cls, columns: dict[str, list[Any]]) -> RawTable:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal length: {sorted(lengths)}")
        return cls(list(columns), lengths.pop() if lengths else 0, lambda c: list(columns[c]))

    def where(self, index: int) -> str:
        line = f", line {self.lines[index]}" if self.lines else ""
        return f"row {index}{line}"


@dataclass
class SourceStats:
    """What happened to one source on its way into the mix (metadata and the dataset card show it)."""

    rows_read: int
    duplicates_dropped: int = 0
    sampled_out: int = 0
    inputs_folded: int = 0
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)


def fold_input(instruction: str, input_text: str | None) -> str:
    """Alpaca's optional input, kept as its own `### Input:` section after the instruction."""
    if input_text is None or not input_text.strip():
        return instruction
    return f"{instruction}\n\n### Input:\n{input_text}"


def _closest(name: str, available: list[str]) -> str:
    lowered = {a.lower(): a for a in available}
    match = lowered.get(name.lower()) or next(iter(difflib.get_close_matches(name, available, n=1, cutoff=0.6)), None)
    return f"; did you mean '{match}'?" if match else ""


def column_mapping(spec: SourceSpec, available: list[str], where: str) -> dict[str, str]:
    """Our column -> the source's, checked against what the source has; `input` only if present or mapped."""
    mapping = {ours: spec.columns.get(ours) or ours for ours in spec.REQUIRED_COLUMNS}
    if "input" in spec.columns:
        if spec.columns["input"]:
            mapping["input"] = spec.columns["input"]
    elif "input" in available and "input" in spec.COLUMNS:  # preference sources have no `input`
        mapping["input"] = "input"
    for ours, theirs in mapping.items():
        if theirs not in available:
            mapped = ours in spec.columns
            fix = f"fix columns.{ours}" if mapped else f"rename it or map it with columns: {{{ours}: <column>}}"
            raise DataError(
                f"{where}: column '{theirs}' missing{_closest(theirs, available)}; it has {available}; {fix}"
            )
    return mapping


def check_text(values: list[Any], label: str, table: RawTable, where: str, optional: bool = False) -> None:
    if optional:
        bad = [i for i, v in enumerate(values) if v is not None and not isinstance(v, str)]
        kind = "non-text"
    else:
        bad = [i for i, v in enumerate(values) if not isinstance(v, str) or not v.strip()]
        kind = "empty or non-text"
    if bad:
        first = values[bad[0]]
        raise DataError(
            f"{where}: {len(bad)} row(s) with {kind} {label}, first at {table.where(bad[0])} "
            f"(value {str(first)[:40]!r}); clean them or drop those rows"
        )


def sample_size(spec: SourceSpec, n: int) -> int:
    if spec.limit is not None:
        return min(spec.limit, n)
    if spec.fraction is not None:
        return round(n * spec.fraction)
    return n


def unique_sampled(keys: list[tuple[str, ...]], keep: list[int], spec: SourceSpec, seed: int | None, where: str,
                   stats: Any, noun: str) -> list[int]:
    """Of the row indices `keep`: those whose `keys[i]` no earlier kept row has (when `spec.dedupe`), then a
    seeded sample of `spec.limit` / `spec.fraction` of them; `stats` counts what each drops and what is left. A
    sample that leaves nothing is a one-line error."""
    if spec.dedupe:
        seen: set[tuple[str, ...]] = set()
        unique = []
        for i in keep:
            if keys[i] not in seen:
                seen.add(keys[i])
                unique.append(i)
        stats.duplicates_dropped = len(keep) - len(unique)
        keep = unique
    size = sample_size(spec, len(keep))
    if size == 0:
        raise DataError(f"{where} is empty after sampling: fraction {spec.fraction} of {len(keep)} {noun} leaves no "
                        f"{noun}; raise it")
    if size < len(keep):
        picked = sorted(random.Random(0 if seed is None else seed).sample(range(len(keep)), size))
        stats.sampled_out = len(keep) - size
        keep = [keep[i] for i in picked]
    stats.rows = len(keep)
    return keep


def prepare(
    table: RawTable, spec: SourceSpec, where: str, seed: int | None = None
) -> tuple[dict[str, list[str]], SourceStats]:
    """Map, check, fold `input`, drop duplicates, sample. Returns instruction/output columns and what happened."""
    if table.num_rows == 0:
        raise DataError(f"{where} is empty: no rows in split '{spec.split}'; check the file, split or artifact")
    mapping = column_mapping(spec, table.column_names, where)
    columns = {ours: table.fetch(theirs) for ours, theirs in mapping.items()}
    for ours, theirs in mapping.items():
        label = f"'{ours}'" if ours == theirs else f"'{ours}' (column '{theirs}')"
        check_text(columns[ours], label, table, where, optional=ours == "input")
    stats = SourceStats(rows_read=table.num_rows, columns=mapping)

    instructions, outputs = columns["instruction"], columns["output"]
    if "input" in columns:
        folded = [fold_input(i, x) for i, x in zip(instructions, columns["input"], strict=True)]
        stats.inputs_folded = sum(a is not b for a, b in zip(folded, instructions, strict=True))
        instructions = folded

    keys = [(instructions[i].strip(), outputs[i].strip()) for i in range(len(instructions))]
    keep = unique_sampled(keys, list(range(len(instructions))), spec, seed, where, stats, "rows")
    return {"instruction": [instructions[i] for i in keep], "output": [outputs[i] for i in keep]}, stats


def origin(spec: SourceSpec) -> str:
    """Where a source's rows come from, in words."""
    if spec.path:
        return spec.path
    if spec.hub_id:
        config = f", config '{spec.config_name}'" if spec.config_name else ""
        revision = f" @ {spec.revision}" if spec.revision else ""
        return f"Hub dataset '{spec.hub_id}'{revision}{config}, split '{spec.split}'"
    version = f" version {spec.version}" if spec.version else ""
    return f"ZenML artifact '{spec.artifact}'{version}"


def describe(spec: SourceSpec) -> str:
    """How errors name a source: its label and where it comes from."""
    return f"data source '{spec.name}' ({origin(spec)})"

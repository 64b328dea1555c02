"""One preference source's rows, checked and shaped into prompt/chosen/rejected pairs. Pure Python, no heavy imports,
so preflight runs the same checks on local files before any model loads."""

from __future__ import annotations

from dataclasses import dataclass, field

from twinsft.config import PreferenceSourceSpec
from twinsft.data.sources.rows import RawTable, check_text, column_mapping, unique_sampled
from twinsft.errors import DataError

COLUMNS = PreferenceSourceSpec.REQUIRED_COLUMNS  # prompt, chosen, rejected


@dataclass
class PairStats:
    """What happened to one source on its way into the mix (metadata and the dataset card show it)."""

    rows_read: int
    identical_dropped: int = 0  # chosen == rejected: no preference to learn
    duplicates_dropped: int = 0
    sampled_out: int = 0
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)

    def dropped(self) -> dict[str, int]:
        return {"chosen equals rejected": self.identical_dropped, "duplicate pair": self.duplicates_dropped,
                "sampled out": self.sampled_out}


def prepare_pairs(
    table: RawTable, spec: PreferenceSourceSpec, where: str, seed: int | None = None
) -> tuple[dict[str, list[str]], PairStats]:
    """Map, check, drop pairs whose answers are equal, drop duplicates, sample. Returns the three columns and what
    happened. A missing column, an empty value, or a source whose every pair has equal answers is a DataError."""
    if table.num_rows == 0:
        raise DataError(f"{where} is empty: no rows in split '{spec.split}'; check the file, split or artifact")
    mapping = column_mapping(spec, table.column_names, where)
    columns = {ours: table.fetch(theirs) for ours, theirs in mapping.items()}
    for ours, theirs in mapping.items():
        check_text(columns[ours], f"'{ours}'" if ours == theirs else f"'{ours}' (column '{theirs}')", table, where)
    stats = PairStats(rows_read=table.num_rows, columns=mapping)
    prompts, chosen, rejected = (columns[c] for c in COLUMNS)

    keep = [i for i in range(table.num_rows) if chosen[i].strip() != rejected[i].strip()]
    stats.identical_dropped = table.num_rows - len(keep)
    if not keep:
        raise DataError(f"{where}: in all {table.num_rows} pairs 'chosen' equals 'rejected' (first at "
                        f"{table.where(0)}), so there is no preference to learn; check the column mapping")
    keys = [(prompts[i].strip(), chosen[i].strip(), rejected[i].strip()) for i in range(table.num_rows)]
    keep = unique_sampled(keys, keep, spec, seed, where, stats, "pairs")
    return {c: [columns[c][i] for i in keep] for c in COLUMNS}, stats

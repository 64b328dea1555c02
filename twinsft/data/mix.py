"""Load instruction datasets (Hub, local files or folders, ZenML artifacts) into one `instruction`/`output`
table, with every source checked the same way (`twinsft.data.sources.rows`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import DataSpec, SourceSpec
from twinsft.data.sources.local import is_saved_dataset, read_local
from twinsft.data.sources.rows import RawTable, SourceStats, describe, prepare
from twinsft.errors import DataError
from twinsft.progress import each

if TYPE_CHECKING:
    from datasets import Dataset


def read_source(spec: SourceSpec) -> RawTable:
    """The source's rows as stored, before any mapping or check."""
    if spec.path:
        path = Path(spec.path).expanduser()
        if not path.exists():
            raise DataError(f"{describe(spec)}: file '{path}' not found; fix its path")
        if is_saved_dataset(path):
            from twinsft.data.sources.hub import read_saved

            return read_saved(str(path), spec.split)
        try:
            return read_local(path, spec.split)[0]
        except DataError as exc:
            raise DataError(f"{describe(spec)}: {exc}") from None
    if spec.hub_id:
        from twinsft.data.sources.hub import read_hub

        return read_hub(spec)
    from twinsft.data.sources.artifact import read_artifact

    return read_artifact(spec)


def check_local_source(spec: SourceSpec) -> SourceStats | None:
    """Every check `load_checked` makes, on a local file or folder, with light imports only (preflight).
    None for a `save_to_disk` folder, which needs `datasets` to read and is checked when the step loads it."""
    path = Path(spec.path).expanduser()
    if is_saved_dataset(path):
        return None
    return prepare(read_source(spec), spec, describe(spec), spec.seed)[1]


def load_checked(spec: SourceSpec, seed: int | None = None) -> tuple[Dataset, SourceStats]:
    """One source as instruction/output/source rows, and what happened on the way (duplicates, sampling)."""
    from datasets import Dataset

    columns, stats = prepare(read_source(spec), spec, describe(spec), spec.seed if spec.seed is not None else seed)
    columns["source"] = [spec.name] * stats.rows
    return Dataset.from_dict(columns), stats


@dataclass
class MixReport:
    """Rows per source and what the checks did to each, in config order."""

    stats: dict[str, SourceStats]

    @property
    def rows_per_source(self) -> dict[str, int]:
        return {name: s.rows for name, s in self.stats.items()}

    def metadata(self) -> dict[str, Any]:
        """Rows in the mix and, per source, the rows kept, dropped as duplicates and sampled out."""
        return {
            "rows": sum(self.rows_per_source.values()),
            "rows_per_source": self.rows_per_source,
            "duplicates_dropped": {n: s.duplicates_dropped for n, s in self.stats.items()},
            "sampled_out": {n: s.sampled_out for n, s in self.stats.items()},
        }


def load_mix_report(spec: DataSpec, seed: int | None = None) -> tuple[Dataset, MixReport]:
    """Every source, validated and concatenated in config order."""
    from datasets import concatenate_datasets

    parts, stats = [], {}
    for source in each(spec.sources, "data source", label=lambda s: s.name):
        part, stats[source.name] = load_checked(source, seed)
        parts.append(part)
    return concatenate_datasets(parts), MixReport(stats)


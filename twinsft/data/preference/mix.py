"""Load preference datasets (Hub, local files or folders, ZenML artifacts) into one prompt/chosen/rejected table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import PreferenceDataSpec, PreferenceSourceSpec
from twinsft.data.mix import read_source
from twinsft.data.preference.pairs import PairStats, prepare_pairs
from twinsft.data.sources.local import is_saved_dataset
from twinsft.data.sources.rows import describe
from twinsft.progress import each

if TYPE_CHECKING:
    from datasets import Dataset


def check_local_pairs(spec: PreferenceSourceSpec) -> PairStats | None:
    """Every check `load_pairs` makes, on a local file or folder, with light imports only (preflight); None for a
    `save_to_disk` folder, checked when the step loads it."""
    if is_saved_dataset(Path(spec.path or "").expanduser()):
        return None
    return prepare_pairs(read_source(spec), spec, describe(spec), spec.seed)[1]


def load_pairs(spec: PreferenceSourceSpec, seed: int | None = None) -> tuple[Dataset, PairStats]:
    from datasets import Dataset

    seed = spec.seed if spec.seed is not None else seed
    columns, stats = prepare_pairs(read_source(spec), spec, describe(spec), seed)
    columns["source"] = [spec.name] * stats.rows
    return Dataset.from_dict(columns), stats


@dataclass
class PreferenceMixReport:
    """Pairs per source and what the checks dropped from each, in config order."""

    stats: dict[str, PairStats]

    def metadata(self) -> dict[str, Any]:
        return {
            "pairs": sum(s.rows for s in self.stats.values()),
            "pairs_per_source": {n: s.rows for n, s in self.stats.items()},
            "identical_dropped": {n: s.identical_dropped for n, s in self.stats.items()},
            "duplicates_dropped": {n: s.duplicates_dropped for n, s in self.stats.items()},
            "sampled_out": {n: s.sampled_out for n, s in self.stats.items()},
        }


def load_preference_mix(spec: PreferenceDataSpec, seed: int | None = None) -> tuple[Dataset, PreferenceMixReport]:
    """Every source, validated and concatenated in config order."""
    from datasets import concatenate_datasets

    parts, stats = [], {}
    for source in each(spec.sources, "preference source", label=lambda s: s.name):
        part, stats[source.name] = load_pairs(source, seed)
        parts.append(part)
    return concatenate_datasets(parts), PreferenceMixReport(stats)

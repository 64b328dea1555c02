"""Cache keys that see what ZenML does not: library code a step calls, and local data files.

ZenML hashes only a step function's own source. Each step's `CachePolicy(cache_func=...)` names
one of the functions below, which hash the source files of the library modules that step runs,
so editing e.g. `twinsft/formatting.py` reruns `format_alpaca` (and nothing it does not touch).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from twinsft.config import DataSpec


def _module_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: every module in it
        return sorted(origin.parent.rglob("*.py"))
    return [origin]


def code_digest(*modules: str) -> str:
    h = hashlib.sha256()
    for module in modules:
        for path in _module_files(module):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


_COMMON = ("twinsft.config", "twinsft.errors", "twinsft.runtime", "twinsft.models")


def load_code() -> str:
    return code_digest(
        *_COMMON, "twinsft.data", "twinsft.sources", "twinsft.dataset_card", "twinsft.prompts", "twinsft.materializers",
        "twinsft.progress",
    )


def format_code() -> str:
    return code_digest(*_COMMON, "twinsft.formatting", "twinsft.prompts", "twinsft.materializers")


def split_code() -> str:
    return code_digest("twinsft.formatting", "twinsft.materializers")


def train_code() -> str:
    return code_digest(*_COMMON, "twinsft.training", "twinsft.memory_plan", "twinsft.resume", "twinsft.tracking",
                       "twinsft.progress", "twinsft.visuals", "twinsft.registry")


def generate_code() -> str:
    return code_digest(*_COMMON, "twinsft.generation", "twinsft.prompts", "twinsft.tracking", "twinsft.progress",
                       "twinsft.visuals")


def export_code() -> str:
    return code_digest(*_COMMON, "twinsft.export", "twinsft.export_check", "twinsft.model_card", "twinsft.prompts")


def data_fingerprint(data: DataSpec) -> str:
    """Content of local files and folders, the identity of Hub sources (pin `revision` to make it exact) and
    the version ids of artifact sources; see `twinsft.sources.fingerprint`."""
    from twinsft.sources.fingerprint import resolve_data

    return resolve_data(data).fingerprint

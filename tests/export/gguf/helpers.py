"""What the GGUF tests read from files and folders."""

from __future__ import annotations

from pathlib import Path


def reader(path: Path):
    from gguf import GGUFReader

    return GGUFReader(path)


def field(fields, key):
    return fields[key].contents()


def leftovers(model_dir: Path) -> list[str]:
    """Temporary GGUF folders left next to the model folder."""
    return [p.name for p in model_dir.parent.iterdir() if p.name.startswith(f".{model_dir.name}-gguf-")]

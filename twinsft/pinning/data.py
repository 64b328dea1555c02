"""What a data mix is made of, as hashes: file contents, Hub identity, artifact version ids.

The pipeline resolves this while it is being built and hands the mix fingerprint to `load_datasets`
as a parameter, so it is part of that step's cache key: an edited file or a new artifact version
reruns the step, an unchanged one does not.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from twinsft.config import DataSpec, SourceSpec
from twinsft.data.sources.artifact import find_version
from twinsft.pinning.hub import hub_commit
from twinsft.storage import content_digest

logger = logging.getLogger(__name__)


def source_fingerprint(spec: SourceSpec, artifact_version_id: str | None = None) -> str:
    """The source's settings plus what identifies its data (for Hub sources the settings are the identity:
    id, config, split, revision)."""
    h = hashlib.sha256(spec.model_dump_json().encode())
    if spec.path:
        h.update(content_digest(Path(spec.path).expanduser()).encode())
    if spec.hub_id and local_hub_folder(spec.hub_id):
        h.update(content_digest(Path(spec.hub_id).expanduser()).encode())
    if spec.artifact:
        h.update(str(artifact_version_id).encode())
    return h.hexdigest()


def local_hub_folder(hub_id: str) -> bool:
    """A `hub_id` that names a local dataset repo (load_dataset reads it from disk): fingerprinted by content."""
    return Path(hub_id).expanduser().is_dir()


def mix_fingerprint(sources: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{name}={fp}" for name, fp in sources.items()).encode()).hexdigest()


@dataclass(frozen=True)
class ResolvedData:
    """The data section with every choice made (artifact versions pinned, sampling seeds filled in)."""

    data: DataSpec
    sources: dict[str, str]  # source name -> fingerprint, in config order
    warnings: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return mix_fingerprint(self.sources)


def resolve_data(data: DataSpec, default_seed: int = 0) -> ResolvedData:
    """Pin what `data` leaves open and fingerprint it. Artifact sources ask the active ZenML store, Hub sources
    the Hub (or the local Hugging Face cache) for the commit their revision names now."""
    pinned, fingerprints, warnings = [], {}, []
    for spec in data.sources:
        update: dict = {}
        if spec.samples and spec.seed is None:
            update["seed"] = default_seed
        version_id = None
        if spec.artifact:
            found = find_version(spec)
            update["version"] = str(found.version)
            version_id = str(found.id)
        if spec.hub_id and not local_hub_folder(spec.hub_id):
            # Pinned to the commit the revision names now: a new upstream commit reruns load_datasets.
            commit = hub_commit(spec.hub_id, "dataset", spec.revision, field=f"data source '{spec.name}' revision")
            if commit is not None:
                update["revision"] = commit
            elif not spec.revision:
                warnings.append(
                    f"data source '{spec.name}': Hub dataset '{spec.hub_id}' has no revision pinned and neither the "
                    "Hub nor the local cache could resolve one; a change on the Hub will not rerun load_datasets "
                    "(cached). Pin data.sources[].revision to a commit for exact reruns"
                )
        spec = spec.model_copy(update=update)
        pinned.append(spec)
        fingerprints[spec.name] = source_fingerprint(spec, version_id)
    for message in warnings:
        logger.warning(message)
    return ResolvedData(data.model_copy(update={"sources": pinned}), fingerprints, warnings)

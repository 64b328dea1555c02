"""A model's weights, pinned at submit: a Hub model to the commit its revision names now, a local model folder
or GGUF file (which has no commit) to a digest of its files (`ModelSource.fingerprint`), so edited weights
rerun the steps that read them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from twinsft.config import ModelSpec
from twinsft.models import cache_root, gguf_path
from twinsft.pinning.hub import hub_commit
from twinsft.storage import content_digest


def is_hub_model(model: ModelSpec) -> bool:
    """A Hub id, not a local folder or a GGUF file (those are pinned by their contents)."""
    return not model.gguf_file and not Path(model.name).expanduser().exists()


def local_weights_digest(model: ModelSpec) -> str:
    """The content digest of the GGUF file, or of every file in the local model folder (names and contents).

    A folder's digest is remembered under the twinsft cache, keyed by its files' names, sizes and modification
    times, so resubmitting an unchanged 16 GB folder does not read it again.
    """
    path = gguf_path(model) if model.gguf_file else Path(model.name).expanduser().resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    listing = hashlib.sha256(str(path).encode())
    for f in files:
        stat = f.stat()
        listing.update(f"{f}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    memo = cache_root() / "content-digests" / listing.hexdigest()
    if memo.is_file():
        return memo.read_text().strip()
    digest = content_digest(path)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest)
    return digest


def pin_model(model: ModelSpec) -> ModelSpec:
    """`model` with `revision` set to the Hub commit id it names now (unchanged when neither the Hub nor the
    cache can tell); a local folder or GGUF file gets its `fingerprint` instead."""
    if not is_hub_model(model):
        return model.model_copy(update={"fingerprint": local_weights_digest(model)})
    commit = hub_commit(model.name, "model", model.revision, field="model.revision")
    return model if commit is None else model.model_copy(update={"revision": commit})

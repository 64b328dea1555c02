"""What a run reads, pinned when it is submitted: Hub revisions as commit ids, local weights as a content digest.

On a remote stack each step runs in its own pod, and a pod that resolves `main` on its own can get a newer
commit than the step before it. The pipeline resolves the model's and the Hub datasets' revisions once, on
the client, and hands the commit ids to every step as parameters (so a new upstream commit also changes
the steps' cache keys). Without the Hub (HF_HUB_OFFLINE, or no connection) the local Hugging Face cache
answers: a branch or tag resolves through its `refs/` file, as `from_pretrained` would resolve it offline.
A local model folder or GGUF file has no commit: the sha256 of its files stands for it (`ModelSource.fingerprint`),
so edited weights rerun the steps that read them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Literal

from twinsft.config import ModelSpec
from twinsft.errors import ConfigError

log = logging.getLogger(__name__)

RepoType = Literal["model", "dataset"]
COMMIT = re.compile(r"[0-9a-f]{40}")
DEFAULT_REVISION = "main"


def is_commit(revision: str | None) -> bool:
    return revision is not None and COMMIT.fullmatch(revision) is not None


def hub_offline() -> bool:
    # Read now, not from huggingface_hub.constants, which fixes the value when huggingface_hub is first imported.
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE",
                                                                                      "TRANSFORMERS_OFFLINE"))


def cached_commit(
    repo_id: str, repo_type: RepoType, revision: str | None, cache_dir: str | Path | None = None
) -> str | None:
    """The commit the local Hugging Face cache holds for `revision` (a branch, tag or commit), or None."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    revision = revision or DEFAULT_REVISION
    repo = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=repo_type)
    if is_commit(revision):
        return revision if (repo / "snapshots" / revision).is_dir() else None
    ref = repo / "refs" / revision
    if not ref.is_file():
        return None
    commit = ref.read_text().strip()
    return commit if is_commit(commit) and (repo / "snapshots" / commit).is_dir() else None


def hub_commit(repo_id: str, repo_type: RepoType, revision: str | None, field: str) -> str | None:
    """The commit id `revision` names now: asked of the Hub, else of the local cache; None when neither knows.

    `field` names the config field in errors. A commit id is returned as given (nothing to resolve). A Hub
    that answers "no such repo/revision" is bad input (ConfigError); a Hub out of reach is not, since the
    steps may run where the Hub is reachable: the cache answers, or the revision stays unpinned with a warning.
    """
    if is_commit(revision):
        return revision
    if not is_repo_id(repo_id):  # a local path that is not there (yet): nothing to pin; preflight names it
        return None
    if not hub_offline():
        import httpx
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        info = HfApi().model_info if repo_type == "model" else HfApi().dataset_info
        try:
            return info(repo_id, revision=revision).sha
        except RevisionNotFoundError:
            raise ConfigError(
                f"{field}: revision '{revision}' of {repo_type} '{repo_id}' is not on the Hub; name a branch, tag "
                "or commit it has"
            ) from None
        except RepositoryNotFoundError:
            raise ConfigError(
                f"{field}: {repo_type} '{repo_id}' is not on the Hub (or it is private: export HF_TOKEN); check "
                "the name"
            ) from None
        except (httpx.HTTPError, OSError) as exc:  # no connection, timeouts, 5xx (HfHubHTTPError): try the cache
            log.debug("Hub unreachable for %s %s: %s", repo_type, repo_id, exc)
    commit = cached_commit(repo_id, repo_type, revision)
    if commit is None:
        log.warning(
            "%s: could not resolve revision '%s' of %s '%s' to a commit (Hub unreachable, not in the local "
            "Hugging Face cache); each step resolves it on its own, so two steps may read different commits. "
            "Pin %s to a commit id for exact reruns",
            field, revision or DEFAULT_REVISION, repo_type, repo_id, field,
        )
    return commit


def is_repo_id(name: str) -> bool:
    """`name` has the form of a Hub id (`name` or `owner/name`), so the Hub can be asked about it."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def is_hub_model(model: ModelSpec) -> bool:
    """A Hub id, not a local folder or a GGUF file (those are pinned by their contents)."""
    return not model.gguf_file and not Path(model.name).expanduser().exists()


def local_weights_digest(model: ModelSpec) -> str:
    """sha256 of the GGUF file, or of every file in the local model folder (names and contents).

    A folder's digest is remembered under the twinsft cache, keyed by its files' names, sizes and modification
    times, so resubmitting an unchanged 16 GB folder does not read it again.
    """
    from twinsft.data.sources.fingerprint import content_digest
    from twinsft.models import cache_root, gguf_path

    path = gguf_path(model) if model.gguf_file else Path(model.name).expanduser().resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    listing = hashlib.sha256(str(path).encode())
    for f in files:
        stat = f.stat()
        listing.update(f"{f}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    memo = cache_root() / "weight-digests" / listing.hexdigest()
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

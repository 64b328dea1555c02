"""Hub revisions resolved to commit ids: asked of the Hub, else of the local Hugging Face cache.

On a remote stack each step runs in its own pod, and a pod that resolves `main` on its own can get a newer
commit than the step before it. The pipeline resolves the model's and the Hub datasets' revisions once, on
the client, and hands the commit ids to every step as parameters (so a new upstream commit also changes
the steps' cache keys). Without the Hub (HF_HUB_OFFLINE, or no connection) the local Hugging Face cache
answers: a branch or tag resolves through its `refs/` file, as `from_pretrained` would resolve it offline.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

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

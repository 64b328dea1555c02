"""Push a saved model folder to the Hub: private by default, never over a repo that holds files unless
asked, and a failure that keeps the local model and says how to retry."""

from __future__ import annotations

import os
from pathlib import Path

from twinsft.config import ExportSpec
from twinsft.errors import ConfigError, UserError


class PushError(UserError):
    """The Hub push was refused or failed; the merged model stays on disk and a rerun retries only the push."""


def hub_token() -> str:
    """HF_TOKEN from the environment (or a ZenML secret exported into the step's environment)."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ConfigError("export.push is on but HF_TOKEN is not set; export HF_TOKEN or set push: false")
    return token


def check_target(api: object, export: ExportSpec) -> None:
    """Refuse to push over a repo that already holds files, or into a public repo when private is asked."""
    repo = export.repo_id
    if not api.repo_exists(repo):  # type: ignore[attr-defined]
        return
    if export.private and not api.repo_info(repo).private:  # type: ignore[attr-defined]
        raise PushError(
            f"export.private is on but Hub repo '{repo}' is public; make it private on the Hub, "
            "set export.private: false, or pick another export.repo_id"
        )
    files = [f for f in api.list_repo_files(repo) if f != ".gitattributes"]  # type: ignore[attr-defined]
    if files and not export.overwrite:
        raise PushError(
            f"Hub repo '{repo}' already holds {len(files)} file(s) on main; set export.overwrite: true "
            "to push a new commit over them, or pick another export.repo_id"
        )


def push_dir(local_dir: Path, export: ExportSpec, commit_message: str) -> tuple[str, str | None]:
    """Upload a saved model folder to export.repo_id; returns the repo URL and the commit URL."""
    from huggingface_hub import HfApi

    assert export.repo_id
    api = HfApi(token=hub_token())
    kept = f"the merged model is saved at {local_dir}"
    try:
        check_target(api, export)
        api.create_repo(export.repo_id, private=export.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(local_dir), repo_id=export.repo_id, commit_message=commit_message)
    except PushError as exc:
        raise PushError(f"{exc}; {kept}") from None
    except Exception as exc:  # network, auth, quota: the local model must survive all of them
        why = " ".join(f"{type(exc).__name__}: {exc}".split())  # Hub errors span lines; keep one
        raise PushError(
            f"pushing to '{export.repo_id}' failed ({why}); {kept}; rerun the same command to retry "
            "(training is cached, only the export reruns)"
        ) from exc
    return f"https://huggingface.co/{export.repo_id}", getattr(commit, "commit_url", None)

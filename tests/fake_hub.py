"""A local stand-in for the Hugging Face Hub API: the network boundary of the push, nothing else faked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace


@dataclass
class FakeHub:
    repos: dict[str, dict] = field(default_factory=dict)  # repo id -> {"private": bool, "files": {name: bytes}}
    commits: list[dict] = field(default_factory=list)
    tokens: list[str | None] = field(default_factory=list)
    fail_upload: bool = False

    def api(self, token: str | None = None) -> FakeHfApi:
        self.tokens.append(token)
        return FakeHfApi(self)


class FakeHfApi:
    def __init__(self, hub: FakeHub):
        self.hub = hub

    def repo_exists(self, repo_id, **_):
        return repo_id in self.hub.repos

    def repo_info(self, repo_id, **_):
        return SimpleNamespace(id=repo_id, private=self.hub.repos[repo_id]["private"])

    def list_repo_files(self, repo_id, **_):
        return sorted(self.hub.repos[repo_id]["files"])

    def create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None, **_):
        if repo_id in self.hub.repos and not exist_ok:
            raise FileExistsError(repo_id)
        self.hub.repos.setdefault(repo_id, {"private": bool(private), "files": {".gitattributes": b""}})

    def upload_folder(self, *, folder_path, repo_id, commit_message=None, **_):
        if self.hub.fail_upload:
            raise ConnectionError("502 Bad Gateway\nfrom the Hub")
        root = Path(folder_path)  # uploaded recursively, as HfApi.upload_folder does (subfolders keep their path)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        self.hub.repos[repo_id]["files"].update(files)
        self.hub.commits.append({"repo_id": repo_id, "message": commit_message, "files": sorted(files)})
        n = len(self.hub.commits)
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/{n:040d}", oid=f"{n:040d}")

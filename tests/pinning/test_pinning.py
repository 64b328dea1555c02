"""Revisions pinned at submit: the Hub faked only at its network boundary (HfApi's info calls), the local
Hugging Face cache laid out as huggingface_hub lays it out."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

from twinsft.config import DataSpec, ModelSpec, SourceSpec
from twinsft.errors import ConfigError
from twinsft.pinning.data import resolve_data
from twinsft.pinning.hub import cached_commit, hub_commit
from twinsft.pinning.model import pin_model

A, B = "a" * 40, "b" * 40


def cache_snapshot(cache: Path, repo_id: str, commit: str, files: dict[str, bytes] | None = None,
                   ref: str | None = "main", repo_type: str = "model") -> Path:
    """What `snapshot_download` leaves in the cache: snapshots/<commit>/ and refs/<ref> naming it."""
    repo = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {"config.json": b"{}"}).items():
        (snapshot / name).write_bytes(data)
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Online (HF_HUB_OFFLINE unset), the Hub answering from `hub.commits`, calls recorded; an empty cache."""
    state = SimpleNamespace(commits={}, calls=[], error=None, cache=tmp_path / "hub")
    state.cache.mkdir()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(state.cache))

    def info(kind):
        def answer(self, repo_id, revision=None, **_):
            state.calls.append((kind, repo_id, revision))
            if state.error is not None:
                raise state.error
            return SimpleNamespace(id=repo_id, sha=state.commits[(kind, repo_id, revision or "main")])
        return answer

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", info("model"))
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", info("dataset"))
    return state


def http_error(cls, message: str):
    import httpx

    response = httpx.Response(404, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))
    return cls(message, response=response)


def test_a_branch_resolves_to_the_commit_the_hub_names_now(hub):
    hub.commits[("model", "org/llama", "main")] = A
    pinned = pin_model(ModelSpec(name="org/llama"))
    assert pinned.revision == A and hub.calls == [("model", "org/llama", None)]
    hub.commits[("model", "org/llama", "main")] = B  # upstream moved on: the next submit pins the new commit
    assert pin_model(ModelSpec(name="org/llama")).revision == B
    hub.commits[("model", "org/llama", "v1")] = A
    assert pin_model(ModelSpec(name="org/llama", revision="v1")).revision == A


def test_a_commit_is_kept_without_asking(hub):
    assert pin_model(ModelSpec(name="org/llama", revision=B)).revision == B
    assert hub.calls == []


def test_a_local_model_folder_is_pinned_by_its_contents(hub, tmp_path, tiny_model_dir, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    first = pin_model(ModelSpec(name=str(folder)))
    assert first.revision is None and len(first.fingerprint) == 64 and hub.calls == []
    assert first.weights_id() == f"content:{first.fingerprint}" and first.source().fingerprint == first.fingerprint

    # Unchanged: the remembered digest answers, nothing is read again.
    import twinsft.pinning.model as pinned_model

    monkeypatch.setattr(pinned_model, "content_digest", lambda path: pytest.fail(f"read {path} again"))
    assert pin_model(ModelSpec(name=str(folder))).fingerprint == first.fingerprint
    monkeypatch.undo()

    # Edited weights: a new fingerprint, so the steps that take the model get new parameters.
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"initializer_range": 0.1', '"initializer_range": 0.2'))
    assert pin_model(ModelSpec(name=str(folder))).fingerprint != first.fingerprint


def test_a_gguf_file_is_pinned_by_its_bytes(hub, tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF one")
    spec = ModelSpec(name=str(tmp_path), gguf_file="m.gguf")
    first = pin_model(spec).fingerprint
    (tmp_path / "m.gguf").write_bytes(b"GGUF two")
    assert pin_model(spec).fingerprint != first and hub.calls == []


def test_the_hub_saying_no_is_one_line_naming_the_field(hub):
    hub.error = http_error(RevisionNotFoundError, "no such revision")
    with pytest.raises(ConfigError, match=r"^model\.revision: revision 'v9' of model 'org/llama' is not on the Hub"):
        pin_model(ModelSpec(name="org/llama", revision="v9"))
    hub.error = http_error(RepositoryNotFoundError, "no such repo")
    with pytest.raises(ConfigError, match=r"model 'org/nope' is not on the Hub .*HF_TOKEN"):
        pin_model(ModelSpec(name="org/nope"))


def test_offline_the_cache_refs_answer_without_a_call(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_snapshot(hub.cache, "org/llama", A)
    cache_snapshot(hub.cache, "org/llama", B, ref="v2")
    assert pin_model(ModelSpec(name="org/llama")).revision == A
    assert pin_model(ModelSpec(name="org/llama", revision="v2")).revision == B
    assert hub.calls == []


def test_an_unreachable_hub_falls_back_to_the_cache_then_warns(hub, caplog):
    import httpx

    hub.error = httpx.ConnectError("[Errno 101] Network is unreachable")  # what HfApi raises without a network
    cache_snapshot(hub.cache, "org/llama", A)
    assert pin_model(ModelSpec(name="org/llama")).revision == A
    unknown = ModelSpec(name="org/other")
    assert pin_model(unknown) is unknown  # unpinned: the steps resolve it themselves
    assert "could not resolve revision 'main' of model 'org/other'" in caplog.text


def test_cached_commit_needs_the_snapshot(tmp_path):
    repo = tmp_path / "models--org--llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(A)
    assert cached_commit("org/llama", "model", None, cache_dir=tmp_path) is None  # a ref without its files
    cache_snapshot(tmp_path, "org/llama", A)
    assert cached_commit("org/llama", "model", None, cache_dir=tmp_path) == A
    assert cached_commit("org/llama", "model", A, cache_dir=tmp_path) == A
    assert cached_commit("org/llama", "model", B, cache_dir=tmp_path) is None


def test_hub_datasets_are_pinned_and_a_new_commit_changes_the_fingerprint(hub, tmp_path):
    data = DataSpec(sources=[SourceSpec(name="twin", hub_id="org/llmtwin"),
                             SourceSpec(name="local", hub_id=str(tmp_path))])  # a local dataset repo
    hub.commits[("dataset", "org/llmtwin", "main")] = A
    first = resolve_data(data)
    assert [s.revision for s in first.data.sources] == [A, None] and not first.warnings
    hub.commits[("dataset", "org/llmtwin", "main")] = B
    second = resolve_data(data)
    assert second.data.sources[0].revision == B and second.fingerprint != first.fingerprint
    assert hub.calls == [("dataset", "org/llmtwin", None)] * 2  # the local folder is fingerprinted, not asked
    (tmp_path / "train.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    assert resolve_data(data).sources["local"] != second.sources["local"]


def test_hub_commit_offline_for_datasets(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_snapshot(hub.cache, "org/llmtwin", B, repo_type="dataset")
    assert hub_commit("org/llmtwin", "dataset", None, field="f") == B

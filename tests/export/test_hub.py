"""The Hub push at its network boundary: private, with run name and card, never clobbering or exposing a repo, and
a failed push keeps the local model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from tests.fake_hub import FakeHub
from twinsft.config import ExportSpec, ModelSpec
from twinsft.errors import ConfigError
from twinsft.export import PushError, export_merged


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi at the network boundary; records calls, can fail."""

    calls: ClassVar[list] = []
    fail_upload = False

    def __init__(self, token=None):
        self.token = token

    def repo_exists(self, repo_id):
        return False

    def create_repo(self, repo_id, private, exist_ok, repo_type):
        FakeHfApi.calls.append(("create_repo", repo_id, private, self.token))

    def upload_folder(self, folder_path, repo_id, commit_message):
        if FakeHfApi.fail_upload:
            raise ConnectionError("hub unreachable")
        FakeHfApi.calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    FakeHfApi.calls, FakeHfApi.fail_upload = [], False
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def test_push_uploads_the_saved_folder_privately(tiny_model_dir, adapter_dir, tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin")
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, run_name="run-1")
    assert result.pushed and result.repo_url == "https://huggingface.co/me/twin"
    assert fake_hub.calls[0] == ("create_repo", "me/twin", True, "hf_test_token")
    assert fake_hub.calls[1][0] == "upload_folder" and "config.json" in fake_hub.calls[1][2]


def test_failed_push_keeps_the_local_model(tiny_model_dir, adapter_dir, tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    fake_hub.fail_upload = True
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin")
    with pytest.raises(PushError, match=r"hub unreachable.*the merged model is saved at"):
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export)
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "m" / "model.safetensors").is_file()


def test_push_without_token_is_a_clear_error(tiny_model_dir, adapter_dir, tmp_path, fake_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin")
    with pytest.raises(ConfigError, match="HF_TOKEN is not set"):
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export)
    assert (tmp_path / "m" / "config.json").is_file()


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return fake


def push_spec(tmp_path, **kw) -> ExportSpec:
    return ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin", **kw)


def test_push_is_private_with_run_name_and_card(tiny_model_dir, adapter_dir, tmp_path, hub):
    result = export_merged(
        ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path), run_name="llm_sft-42", card="# card\n"
    )
    assert result.pushed and result.commit_url.startswith("https://huggingface.co/me/twin/commit/")
    assert hub.repos["me/twin"]["private"] is True and hub.tokens == ["hf_test_token"]
    (commit,) = hub.commits
    assert "llm_sft-42" in commit["message"]
    assert {"README.md", "config.json", "model.safetensors"} <= set(commit["files"])
    assert hub.repos["me/twin"]["files"]["README.md"] == b"# card\n"


def test_push_refuses_a_repo_with_files_unless_overwrite(tiny_model_dir, adapter_dir, tmp_path, hub):
    hub.repos["me/twin"] = {"private": True, "files": {".gitattributes": b"", "model.safetensors": b"old"}}
    with pytest.raises(PushError) as err:
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path))
    assert "already holds 1 file(s)" in str(err.value) and "export.overwrite: true" in str(err.value)
    assert "\n" not in str(err.value) and not hub.commits
    assert hub.repos["me/twin"]["files"]["model.safetensors"] == b"old"
    assert (tmp_path / "m" / "model.safetensors").is_file()  # the local model is kept
    export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path, overwrite=True))
    assert hub.repos["me/twin"]["files"]["model.safetensors"] != b"old"


def test_push_into_an_existing_empty_repo_is_allowed(tiny_model_dir, adapter_dir, tmp_path, hub):
    """What a retry after a failed upload finds: the repo was created, nothing was uploaded."""
    hub.repos["me/twin"] = {"private": True, "files": {".gitattributes": b""}}
    assert export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path)).pushed


def test_push_refuses_a_public_repo_when_private_is_asked(tiny_model_dir, adapter_dir, tmp_path, hub):
    hub.repos["me/twin"] = {"private": False, "files": {".gitattributes": b""}}
    with pytest.raises(PushError, match="Hub repo 'me/twin' is public"):
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path))
    assert export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path, private=False)).pushed


def test_failed_upload_is_one_line_with_the_retry(tiny_model_dir, adapter_dir, tmp_path, hub):
    hub.fail_upload = True
    with pytest.raises(PushError) as err:
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path))
    text = str(err.value)
    assert "\n" not in text and "ConnectionError: 502 Bad Gateway from the Hub" in text
    assert f"saved at {tmp_path / 'm'}" in text and "rerun the same command to retry" in text
    assert (tmp_path / "m" / "model.safetensors").is_file()

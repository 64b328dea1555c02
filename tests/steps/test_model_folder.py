"""Model folders (the LoRA adapter, the merged model) in the artifact store: file by file, keyed by their
content, loaded into a local cache on any machine that reaches the store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from twinsft import storage
from twinsft.steps.model_folder import MANIFEST, ModelFolder, ModelFolderMaterializer, local_dir


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in storage.list_files(str(root)) if rel != MANIFEST}


@pytest.fixture
def model_copy(tiny_merged_dir, tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(tiny_merged_dir, out)
    (out / "gguf").mkdir()
    (out / "gguf" / "m-f16.gguf").write_bytes(os.urandom(4096))  # a subfolder travels too
    return out


def test_saved_file_by_file_and_loaded_into_a_fresh_cache(model_copy, tmp_path, monkeypatch):
    from zenml import save_artifact
    from zenml.client import Client

    saved = save_artifact(ModelFolder(model_copy), name="model-folder-test")
    version = Client().get_artifact_version(saved.id)
    stored = set(storage.list_files(version.uri))
    assert stored == {*folder_bytes(model_copy), MANIFEST}  # each file as it is: no archive
    assert version.content_hash == storage.content_digest(model_copy)

    monkeypatch.setenv("TWINSFT_CACHE", str(tmp_path / "other-machine"))  # nothing cached there yet
    loaded = version.load()
    assert isinstance(loaded, ModelFolder) and loaded.path.is_relative_to(tmp_path / "other-machine")
    assert folder_bytes(loaded.path) == folder_bytes(model_copy)
    assert version.load().path == loaded.path  # the second load copies nothing


def test_content_hash_follows_the_bytes_not_the_folder(model_copy, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(model_copy, twin)
    assert ModelFolder(twin).digest() == ModelFolder(model_copy).digest()
    (twin / "config.json").write_text((twin / "config.json").read_text() + " ")
    assert ModelFolder(twin).digest() != ModelFolder(model_copy).digest()
    (twin / "config.json").rename(twin / "config2.json")  # a renamed file is another folder
    assert ModelFolder(twin).digest() != ModelFolder(model_copy).digest()


def test_an_upload_without_its_manifest_does_not_load(model_copy, tmp_path):
    from zenml.client import Client

    store = Client().active_stack.artifact_store
    uri = str(tmp_path / "artifact")
    materializer = ModelFolderMaterializer(uri, artifact_store=store)
    materializer.save(ModelFolder(model_copy))
    os.remove(os.path.join(uri, MANIFEST))  # as if the step died mid-upload
    with pytest.raises(FileNotFoundError, match="did not finish"):
        materializer.load(ModelFolder)


def test_adapter_stored_as_a_path_by_older_runs_still_loads(adapter_dir):
    """Runs before ModelFolder stored `lora_adapter` as a Path (ZenML's tarball); the steps still read it."""
    from zenml import save_artifact
    from zenml.client import Client

    saved = save_artifact(Path(adapter_dir), name="old-path-adapter")
    loaded = Client().get_artifact_version(saved.id).load()
    assert isinstance(loaded, Path)
    assert (local_dir(loaded) / "adapter_model.safetensors").read_bytes() == (
        Path(adapter_dir) / "adapter_model.safetensors").read_bytes()

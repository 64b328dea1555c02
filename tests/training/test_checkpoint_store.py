"""Checkpoints in the artifact store: each saved checkpoint is copied up with its marker last, older ones are
dropped, and a fresh machine copies the newest complete one down (a half-written one never counts)."""

from __future__ import annotations

from pathlib import Path

from twinsft.training import resume


def fake_checkpoint(scratch: Path, step: int) -> Path:
    folder = scratch / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(bytes([step]) * 1000)
    (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    return folder


def test_saved_checkpoints_go_up_and_the_newest_complete_comes_down(tmp_path):
    store, scratch = str(tmp_path / "store" / "key"), tmp_path / "pod-1"
    for step in (3, 6):
        fake_checkpoint(scratch, step)
        resume.save_complete(str(scratch), step, store)
    assert [(s, done) for s, _, done in resume.stored_checkpoints(store)] == [(6, True)]  # 3 dropped once 6 was up
    # A crash while copying checkpoint 9 up: files there, no marker.
    half = Path(store, "checkpoint-9")
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes(b"partial")

    fresh = tmp_path / "pod-2"
    fresh.mkdir()
    resume.download_latest(store, fresh)
    assert [p.name for p in fresh.iterdir()] == ["checkpoint-6"]
    assert resume.latest_complete(fresh) == fresh / "checkpoint-6"
    assert (fresh / "checkpoint-6" / "adapter_model.safetensors").read_bytes() == bytes([6]) * 1000
    assert not half.exists()  # deleted, as a half-written local one is


def test_nothing_in_the_store_means_a_fresh_start(tmp_path):
    resume.download_latest(str(tmp_path / "nothing"), tmp_path)
    assert resume.latest_complete(tmp_path) is None


def test_default_location_is_the_active_artifact_store():
    from zenml.client import Client

    assert resume.store_root() == f"{Client().active_stack.artifact_store.path}/{resume.STORE_FOLDER}"

"""GGUF files in the export stage: `export.gguf` in the config, the merged model's folder, its card and the push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.export.gguf.helpers import leftovers
from tests.fake_hub import FakeHub
from twinsft.config import ExportSpec, ModelSpec
from twinsft.export import ExportResult, export_merged
from twinsft.export.gguf import F16_MAX_LOGIT_DIFF

pytestmark = pytest.mark.gguf


def test_export_spec_takes_known_quantizations_once():
    assert ExportSpec().gguf == [] and ExportSpec(gguf=["q8_0", "f16"]).gguf == ["q8_0", "f16"]
    assert ExportSpec(gguf="q8_0").gguf == ["q8_0"]
    with pytest.raises(ValidationError, match="unknown GGUF quantization 'q4_0'; use f16 or q8_0"):
        ExportSpec(gguf=["q4_0"])
    with pytest.raises(ValidationError, match="'f16' is listed twice"):
        ExportSpec(gguf=["f16", "q8_0", "f16"])


def test_export_merged_writes_verified_gguf_records_it_and_adds_it_to_the_card(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    export = ExportSpec(output_dir=str(tmp_path / "twin"), gguf=["q8_0", "f16"])
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, card="# Fine-tuned\n")
    local = tmp_path / "twin"
    assert list(result.gguf) == ["q8_0", "f16"]
    for quantization, check in result.gguf.items():
        assert Path(check.path) == local / "gguf" / f"twin-{quantization}.gguf"
        assert Path(check.path).stat().st_size == check.size_bytes
    assert result.gguf["f16"].max_logit_diff <= F16_MAX_LOGIT_DIFF and result.gguf["f16"].greedy_match
    assert result.gguf_modelfile == str(local / "gguf" / "Modelfile") and result.gguf_warnings == []
    assert "FROM ./twin-q8_0.gguf\n" in Path(result.gguf_modelfile).read_text()  # the first listed
    card = (local / "README.md").read_text()
    assert card.startswith("# Fine-tuned\n") and "## GGUF (llama.cpp, Ollama)" in card
    assert "`gguf/twin-q8_0.gguf`: q8_0" in card and "llama-cli -m gguf/twin-q8_0.gguf" in card
    assert "ollama create" in card and not leftovers(local)
    metadata = result.model_dump(exclude_none=True)  # what push_merged logs
    assert json.loads(json.dumps(metadata))["gguf"]["f16"]["greedy_match"] is True
    assert ExportResult.model_validate_json(result.model_dump_json()) == result
    AutoModelForCausalLM.from_pretrained(local)  # the gguf/ folder does not disturb the transformers model


def test_without_gguf_nothing_changes(tiny_model_dir, adapter_dir, tmp_path):
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, ExportSpec(output_dir=str(tmp_path / "m")))
    assert result.gguf is None and not (tmp_path / "m" / "gguf").exists()
    assert "gguf" not in result.model_dump(exclude_none=True)


def test_push_uploads_the_gguf_folder_with_the_model_and_card(tiny_model_dir, adapter_dir, tmp_path, monkeypatch):
    import huggingface_hub

    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin", gguf=["q8_0"])
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, run_name="run-7", card="# c\n")
    assert result.pushed
    files = hub.commits[-1]["files"]
    assert {"gguf/twin-q8_0.gguf", "gguf/Modelfile", "README.md", "model.safetensors"} <= set(files)
    assert "GGUF q8_0" in hub.commits[-1]["message"] and "run-7" in hub.commits[-1]["message"]
    assert b"gguf/twin-q8_0.gguf" in hub.repos["me/twin"]["files"]["README.md"]

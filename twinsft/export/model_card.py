"""The model card (README.md) saved with the merged model: what it was trained from, how, and how well."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsft.config import DataSpec, LoraSpec, ModelSpec, TrainingSpec
from twinsft.data.alpaca import ALPACA
from twinsft.export.gguf import GGUFCheck, GGUFExport
from twinsft.training.report import TrainReport


def _table(rows: dict[str, Any]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| `{k}` | {v if v not in (None, '') else '-'} |" for k, v in rows.items()]
    return "\n".join(lines)


def _source(s: Any) -> str:
    if s.hub_id:
        where = f"Hub `{s.hub_id}`" + (f" (config `{s.config_name}`)" if s.config_name else "")
    elif s.path:
        where = f"file `{s.path}`"
    else:
        where = f"ZenML artifact `{s.artifact}`" + (f" version `{s.version}`" if s.version else "")
    extras = [f"split `{s.split}`"] + ([f"revision `{s.revision}`"] if s.revision else [])
    if s.limit or s.fraction:
        extras.append(f"{s.limit} rows sampled" if s.limit else f"{s.fraction:.0%} of rows sampled")
    return f"- **{s.name}**: {where}, " + ", ".join(extras)


def render_card(
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    data: DataSpec | None,
    report: TrainReport,
    run_name: str,
) -> str:
    sources = "\n".join(_source(s) for s in data.sources) if data else (
        "- the dataset step of the pipeline that ran these steps"
    )
    base = model.name + (f" (GGUF `{model.gguf_file}`, dequantized)" if model.gguf_file else "")
    if model.revision:  # the Hub commit pinned when the run was submitted: the exact weights every step read
        base += f" at revision `{model.revision}`"
    elif model.fingerprint:  # local files: their digest stands for a commit
        base += f" (files sha256 `{model.fingerprint}`)"
    mode = {"qlora": "QLoRA (4-bit NF4 base)", "lora-fp8": "LoRA (trained on an FP8 row-scaled base, merged into the "
            "16-bit base)", "lora-fp8_block": "LoRA (trained on an FP8 block-scaled base, merged into the 16-bit base)"
            }.get(report.mode, "LoRA (16-bit base)")
    hyper = {**{f"lora.{k}": v for k, v in lora.model_dump().items()},
             **{f"training.{k}": v for k, v in training.model_dump(exclude={"checkpoint_dir"}).items()},
             "model.max_seq_length": model.max_seq_length, "model.revision": model.revision}
    return f"""---
base_model: {model.name}
library_name: transformers
pipeline_tag: text-generation
tags: [twinsft, sft, lora, alpaca]
---

# Fine-tuned {model.name}

Supervised fine-tune of **{base}** with {mode}, merged into 16-bit weights. Trained by the twinsft
pipeline, ZenML run `{run_name}` ({report.backend} backend, {report.precision}, {report.device}).

## Prompt

The tokenizer's chat template renders the Alpaca prompt used in training; a response ends with EOS.

```
{ALPACA.prompt("<instruction>")}
```

## Data

{sources}

Fingerprints of the exact rows (sha256 of their content, as the pipeline's cache keys them):

- Training rows: {report.train_rows}, `{report.train_rows_sha256}`
- Held-out rows: {report.eval_rows}, `{report.eval_rows_sha256}`

## Evaluation (held-out {report.eval_loss_name})

| before training | after training | change |
|---|---|---|
| {report.eval_loss_before:.4f} | {report.eval_loss_after:.4f} | {report.eval_loss_change} |

{report.steps} optimizer steps, {report.train_tokens:,} training tokens, mean training loss {report.train_loss:.4f}.

## Hyperparameters

{_table(hyper)}

## Versions

{_table(report.versions)}
"""


def _gguf_line(check: GGUFCheck, folder: str) -> str:
    name = f"{folder}/{Path(check.path).name}"
    unit, scale = next((u, 2**e) for u, e in (("GiB", 30), ("MiB", 20), ("KiB", 10), ("bytes", 0))
                       if check.size_bytes >= 2**e or e == 0)
    size = f"{check.size_bytes / scale:,.{0 if unit == 'bytes' else 1}f} {unit}"
    if check.greedy_match:
        greedy = "same greedy tokens as the merged model"
    else:
        greedy = f"greedy tokens differ from the merged model's from token {check.first_mismatch} on"
    return f"- `{name}`: {check.quantization}, {size}; max logit difference {check.max_logit_diff:.2g}, {greedy}"


def gguf_section(gguf: GGUFExport, model_dir: str) -> str:
    """The card's part on the GGUF files, added once they are written and verified (a card never names files
    that are not there)."""
    folder = Path(gguf.dir).relative_to(model_dir).as_posix()
    files = "\n".join(_gguf_line(c, folder) for c in gguf.files.values())
    first = f"{folder}/{Path(next(iter(gguf.files.values())).path).name}"
    return f"""
## GGUF (llama.cpp, Ollama)

{files}

Written from the merged weights and reloaded before they were kept: the differences above are against the
merged model on a probe prompt (float32 logits; the first {gguf.verified_tokens} greedy tokens). Each file
carries the tokenizer and the Alpaca chat template; `{folder}/{Path(gguf.modelfile).name}` gives Ollama the same
prompt and stops at EOS.

```bash
llama-cli -m {first} --jinja       # chat: each turn is rendered with the file's Alpaca template
cd {folder} && ollama create twin -f Modelfile && ollama run twin "Write a paragraph about fine-tuning."
```
"""


def render_dpo_card(
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    data: DataSpec | None,
    report: TrainReport,
    evaluation: dict[str, Any],
    run_name: str,
    start: dict[str, Any],
) -> str:
    """The card of a DPO model: what it started from, the preference data, SFT vs DPO on held-out pairs."""
    sources = "\n".join(_source(s) for s in data.sources) if data else "- the preference step of this pipeline"
    hyper = {**{f"lora.{k}": v for k, v in lora.model_dump().items()},
             **{f"training.{k}": v for k, v in training.model_dump(exclude={"checkpoint_dir"}).items()}}
    sft_vs_dpo = {k: evaluation.get(k) for k in (
        "sft_preference_accuracy", "dpo_preference_accuracy", "sft_mean_margin", "dpo_mean_margin",
        "sft_chosen_loss", "dpo_chosen_loss", "sft_eos_rate", "dpo_eos_rate", "dpo_reward_accuracy",
        "dpo_reward_margin")}
    return f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [twinsft, dpo, lora, alpaca]
---

# DPO of the SFT model

Direct preference optimization ({report.mode}, {report.backend} backend, {report.precision}) of the SFT stage's
result, merged into 16-bit weights; ZenML run `{run_name}`. Trained on: `{model.name}`.

## Started from

{_table(start) if start else "- the SFT steps of the same run"}

## Prompt

The Alpaca prompt of the SFT stage; an answer ends with EOS.

```
{ALPACA.prompt("<instruction>")}
```

## Preference data

{sources}

- Training pairs: {report.train_rows}, `{report.train_rows_sha256}`
- Held-out pairs: {report.eval_rows}, `{report.eval_rows_sha256}`

## Held-out pairs: SFT vs DPO

{_table(sft_vs_dpo)}

Held-out DPO loss {report.eval_loss_before:.4f} before training, {report.eval_loss_after:.4f} after;
{report.steps} optimizer steps.

## Hyperparameters

{_table(hyper)}

## Versions

{_table(report.versions)}
"""

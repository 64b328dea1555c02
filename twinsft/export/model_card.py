"""The model card (README.md) saved with the merged model: what it was trained from, how, and how well."""

from __future__ import annotations

from typing import Any

from twinsft.config import DataSpec, LoraSpec, ModelSpec, TrainingSpec
from twinsft.prompts import ALPACA
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
    mode = "QLoRA (4-bit NF4 base)" if report.mode == "qlora" else "LoRA (16-bit base)"
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

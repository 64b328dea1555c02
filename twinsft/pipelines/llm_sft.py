"""The `llm_sft` pipeline: load_datasets -> format_alpaca -> split -> train_sft -> smoke_generate -> push_merged."""

from zenml import Model, pipeline
from zenml.enums import ExecutionMode

from twinsft import steps
from twinsft.config import (
    DataSpec,
    ExportSpec,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    Section,
    Sections,
    SplitSpec,
    TrainingSpec,
)
from twinsft.data.sources.fingerprint import resolve_data
from twinsft.tracking import COMET, stack_comet_tracker

# Each run is a version of this ZenML Model; a run configuration's top-level `model:` names its own.
DEFAULT_MODEL = Model(name="twinsft", description="LoRA/QLoRA SFT of a Llama model (twinsft)", tags=["llm", "sft"])


def sft_steps(dataset, *, data: DataSpec | None = None, **sections: Section | None):
    """format_alpaca -> split -> train_sft -> smoke_generate -> push_merged on `dataset`.

    `dataset` is a step output (a `datasets.Dataset` with `instruction` and `output` columns), so a
    parent pipeline can put these steps after its own data step. Call inside a `@pipeline`.
    Returns the `lora_adapter`, `train_report` and `merged_model` outputs.
    `sections` are those of `twinsft.config.Sections` (`model=ModelSpec(...)`, `training=...`);
    omitted or None ones take their defaults, unknown names are errors. `data` (optional) names the
    sources in the model card.
    """
    cfg = Sections(**{name: value for name, value in sections.items() if value is not None})
    formatted = steps.format_alpaca(dataset, tokenizer_source=cfg.model.source())
    train, test = steps.split(formatted, split=cfg.split)
    trainer = steps.train_sft
    if COMET in cfg.training.report_to and (tracker := stack_comet_tracker()) is not None:
        trainer = trainer.with_options(experiment_tracker=tracker.name)  # the stack's Comet experiment
    adapter, report = trainer(train, test, model=cfg.model, lora=cfg.lora, training=cfg.training)
    steps.smoke_generate(adapter, test, model=cfg.model, generation=cfg.generation)  # evaluates on held-out rows
    merged, _result = steps.push_merged(
        adapter, report, model=cfg.model, lora=cfg.lora, training=cfg.training, data=data,
        export=cfg.export.resolved(), after="smoke_generate",
    )
    return adapter, report, merged


# Fail fast: the first failing step's own exception (e.g. a one-line UserError) reaches run.py.
@pipeline(name="llm_sft", execution_mode=ExecutionMode.FAIL_FAST, model=DEFAULT_MODEL)
def sft_pipeline(
    data: DataSpec,
    model: ModelSpec | None = None,
    lora: LoraSpec | None = None,
    split: SplitSpec | None = None,
    training: TrainingSpec | None = None,
    generation: GenerationSpec | None = None,
    export: ExportSpec | None = None,
):
    """load_datasets -> format_alpaca -> split -> train_sft -> smoke_generate -> push_merged.

    The arguments are the sections of `twinsft.config.RunConfig` (omitted ones take its defaults);
    a run configuration file's `parameters:` block supplies them. A larger pipeline can call this
    one to inline its steps, and gets the adapter, training report and export result back.
    """
    model, training = model or ModelSpec(), training or TrainingSpec()
    # Artifact versions and sampling seeds are pinned now, so the fingerprint (a step parameter) keys the cache.
    resolved = resolve_data(data, default_seed=training.seed)
    raw, _card = steps.load_datasets(
        data=resolved.data,
        fingerprint=resolved.fingerprint,
        source_fingerprints=resolved.sources,
        tokenizer_source=model.source(),
    )
    # The card lists the sources as configured (exact rows are fingerprinted from the report), so a new
    # artifact version with the same rows keeps push_merged cached.
    return sft_steps(raw, data=data, model=model, lora=lora, split=split, training=training, generation=generation,
                     export=export)

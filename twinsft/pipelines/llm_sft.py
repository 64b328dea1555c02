"""The `llm_sft` pipeline: load_datasets -> format_alpaca -> split -> train_sft -> smoke_generate -> push_merged
-> promote."""

from zenml import Model, pipeline
from zenml.enums import ExecutionMode

from twinsft import steps
from twinsft.config import (
    DataSpec,
    ExportSpec,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    PromotionSpec,
    Section,
    Sections,
    SplitSpec,
    TrainingSpec,
)
from twinsft.pinning.data import resolve_data
from twinsft.pinning.model import pin_model
from twinsft.tracking import with_stack_comet


def hub_commits_pinned(data: DataSpec, resolved: DataSpec) -> DataSpec:
    """`data` as configured, but each Hub source with the commit it was resolved to (for the model card)."""
    sources = [s.model_copy(update={"revision": r.revision}) if s.hub_id else s
               for s, r in zip(data.sources, resolved.sources, strict=True)]
    return data.model_copy(update={"sources": sources})


# Each run is a version of this ZenML Model; a run configuration's top-level `model:` names its own.
DEFAULT_MODEL = Model(name="twinsft", description="LoRA/QLoRA SFT of a Llama model (twinsft)", tags=["llm", "sft"])


def sft_steps(dataset, *, data: DataSpec | None = None, **sections: Section | None):
    """format_alpaca -> split -> train_sft -> smoke_generate -> push_merged -> promote on `dataset`.

    `dataset` is a step output (a `datasets.Dataset` with `instruction` and `output` columns), so a
    parent pipeline can put these steps after its own data step. Call inside a `@pipeline`.
    Returns the `lora_adapter`, `train_report` and `merged_model` outputs.
    `sections` are those of `twinsft.config.Sections` (`model=ModelSpec(...)`, `training=...`);
    omitted or None ones take their defaults, unknown names are errors. `data` (optional) names the
    sources in the model card. The model's Hub revision is pinned to a commit here, on the client, so
    every step (each perhaps in its own pod) loads the same weights.
    """
    cfg = Sections(**{name: value for name, value in sections.items() if value is not None})
    cfg = cfg.model_copy(update={"model": pin_model(cfg.model)})
    formatted = steps.format_alpaca(dataset, tokenizer_source=cfg.model.source())
    train, test = steps.split(formatted, split=cfg.split)
    trainer = with_stack_comet(steps.train_sft, cfg.training.report_to)
    adapter, report = trainer(train, test, model=cfg.model, lora=cfg.lora, training=cfg.training)
    _smoke, evaluation = steps.smoke_generate(adapter, test, model=cfg.model, generation=cfg.generation)
    merged, result = steps.push_merged(
        adapter, report, model=cfg.model, lora=cfg.lora, training=cfg.training, data=data,
        export=cfg.export.resolved(), after="smoke_generate",
    )
    steps.promote(evaluation, result, model=cfg.model, promotion=cfg.promotion)  # on the held-out evidence
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
    promotion: PromotionSpec | None = None,
):
    """load_datasets -> format_alpaca -> split -> train_sft -> smoke_generate -> push_merged -> promote.

    The arguments are the sections of `twinsft.config.RunConfig` (omitted ones take its defaults);
    a run configuration file's `parameters:` block supplies them. A larger pipeline can call this
    one to inline its steps, and gets the adapter, training report and export result back.
    """
    model, training = pin_model(model or ModelSpec()), training or TrainingSpec()
    # Artifact versions, Hub commits and sampling seeds are pinned now, so the fingerprint (a step parameter)
    # keys the cache.
    resolved = resolve_data(data, default_seed=training.seed)
    raw, _card = steps.load_datasets(
        data=resolved.data,
        fingerprint=resolved.fingerprint,
        source_fingerprints=resolved.sources,
        tokenizer_source=model.source(),
    )
    # The card lists the sources as configured, Hub commits pinned (exact rows are fingerprinted from the report),
    # so a new artifact version with the same rows keeps push_merged cached.
    return sft_steps(raw, data=hub_commits_pinned(data, resolved.data), model=model, lora=lora, split=split,
                     training=training, generation=generation, export=export, promotion=promotion)

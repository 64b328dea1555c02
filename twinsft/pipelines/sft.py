from zenml import Model, pipeline
from zenml.enums import ExecutionMode

from twinsft.steps import format_alpaca, load_datasets, push_merged, smoke_generate, train_sft
from twinsft.steps import split as split_step
from twinsft.config import DataSpec, ExportSpec, GenerationSpec, LoraSpec, ModelSpec, SplitSpec, TrainingSpec
from twinsft.sources.fingerprint import resolve_data
from twinsft.tracking import COMET, stack_comet_tracker

# Each run is a version of this ZenML Model; a run configuration's top-level `model:` names its own.
DEFAULT_MODEL = Model(name="twinsft", description="LoRA/QLoRA SFT of a Llama model (twinsft)", tags=["llm", "sft"])


def sft_steps(
    dataset,
    model: ModelSpec | None = None,
    lora: LoraSpec | None = None,
    split: SplitSpec | None = None,
    training: TrainingSpec | None = None,
    generation: GenerationSpec | None = None,
    export: ExportSpec | None = None,
    data: DataSpec | None = None,
):
    """format_alpaca -> split -> train_sft -> smoke_generate -> push_merged on `dataset`.

    `dataset` is a step output (a `datasets.Dataset` with `instruction` and `output` columns), so a
    parent pipeline can put these steps after its own data step. Call inside a `@pipeline`. `data`
    (optional) names the sources in the model card.
    """
    model, lora, training = model or ModelSpec(), lora or LoraSpec(), training or TrainingSpec()
    formatted = format_alpaca(dataset, tokenizer_source=model.source())
    train, test = split_step(formatted, split=split or SplitSpec())
    trainer = train_sft
    if COMET in training.report_to and (tracker := stack_comet_tracker()) is not None:
        trainer = train_sft.with_options(experiment_tracker=tracker.name)  # the stack's Comet experiment
    adapter, report = trainer(train, test, model=model, lora=lora, training=training)
    smoke_generate(adapter, model=model, generation=generation or GenerationSpec())
    merged = push_merged(
        adapter, report, model=model, lora=lora, training=training, data=data,
        export=(export or ExportSpec()).resolved(), after="smoke_generate",
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
    model = model or ModelSpec()
    training = training or TrainingSpec()
    # Artifact versions and sampling seeds are pinned now, so the fingerprint (a step parameter) keys the cache.
    resolved = resolve_data(data, default_seed=training.seed)
    raw, _card = load_datasets(
        data=resolved.data,
        fingerprint=resolved.fingerprint,
        source_fingerprints=resolved.sources,
        tokenizer_source=model.source(),
    )
    # The card lists the sources as configured (exact rows are fingerprinted from the report), so a new
    # artifact version with the same rows keeps push_merged cached.
    return sft_steps(raw, model=model, lora=lora, split=split, training=training, generation=generation, export=export,
                     data=data)

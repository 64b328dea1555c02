from zenml import pipeline
from zenml.enums import ExecutionMode

from twinsft.steps import format_alpaca, load_datasets, push_merged, smoke_generate, train_sft
from twinsft.steps import split as split_step
from twinsft.caching import data_fingerprint
from twinsft.config import DataSpec, ExportSpec, GenerationSpec, LoraSpec, ModelSpec, SplitSpec, TrainingSpec


# Fail fast: the first failing step's own exception (e.g. a one-line UserError) reaches run.py.
@pipeline(name="llm_sft", execution_mode=ExecutionMode.FAIL_FAST)
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
    raw = load_datasets(data=data, fingerprint=data_fingerprint(data))
    formatted = format_alpaca(raw, tokenizer_source=model.source())
    train, test = split_step(formatted, split=split or SplitSpec())
    adapter, report = train_sft(train, test, model=model, lora=lora or LoraSpec(), training=training or TrainingSpec())
    smoke_generate(adapter, model=model, generation=generation or GenerationSpec())
    merged = push_merged(adapter, model=model, export=(export or ExportSpec()).resolved(), after="smoke_generate")
    return adapter, report, merged

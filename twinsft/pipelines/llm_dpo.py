"""The DPO stage: `llm_dpo` (standalone, from an SFT artifact in the store) and `llm_twin` (SFT then DPO in one DAG).

load_preferences -> format_preferences -> split_preferences -> train_dpo -> evaluate_dpo -> push_dpo_merged.
"""

from typing import Any

from zenml import Model, pipeline
from zenml.enums import ExecutionMode

from twinsft.config import (
    DataSpec,
    DpoStage,
    DpoTrainingSpec,
    ExportSpec,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    PreferenceDataSpec,
    PreferenceEvalSpec,
    PromotionSpec,
    SplitSpec,
    StartSpec,
    TrainingSpec,
)
from twinsft.pinning.data import resolve_data
from twinsft.pinning.model import pin_model
from twinsft.pinning.start import resolve_start
from twinsft.pipelines.llm_sft import sft_pipeline
from twinsft.steps import dpo as dpo_steps_
from twinsft.tracking import with_stack_comet

DEFAULT_DPO_MODEL = Model(name="twinsft-dpo", description="DPO of an SFT model (twinsft)", tags=["llm", "dpo"])
DEFAULT_TWIN_MODEL = Model(name="twinsft-twin", description="SFT then DPO (twinsft)", tags=["llm", "sft", "dpo"])


def dpo_steps(start: Any, *, model: ModelSpec, stage: DpoStage, start_info: dict[str, Any] | None = None):
    """The DPO stage on `start` (the SFT `merged_model` or `lora_adapter`: a step output or an artifact version).
    `model` is the SFT stage's base model. Call inside a `@pipeline`. Returns the DPO adapter and merged model."""
    resolved = resolve_data(stage.preference, default_seed=stage.training.seed)
    raw, _card = dpo_steps_.load_preferences(data=resolved.data, fingerprint=resolved.fingerprint,
                                             tokenizer_source=model.source())
    formatted = dpo_steps_.format_preferences(raw, tokenizer_source=model.source())
    train, test = dpo_steps_.split_preferences(formatted, split=stage.split)
    trainer = with_stack_comet(dpo_steps_.train_dpo, stage.training.report_to)
    kind = stage.start.artifact
    adapter, report = trainer(train, test, start, model=model, lora=stage.lora, training=stage.training,
                              start_artifact=kind, start_info=start_info)
    evaluation, _report = dpo_steps_.evaluate_dpo(adapter, test, start, model=model, training=stage.training,
                                                  evaluation=stage.evaluation, start_artifact=kind)
    merged, _result = dpo_steps_.push_dpo_merged(
        adapter, report, evaluation, start, model=model, lora=stage.lora, training=stage.training,
        export=stage.export.resolved(), data=stage.preference, start_artifact=kind, start_info=start_info)
    return adapter, merged


@pipeline(name="llm_dpo", execution_mode=ExecutionMode.FAIL_FAST, model=DEFAULT_DPO_MODEL)
def dpo_pipeline(
    preference: PreferenceDataSpec,
    model: ModelSpec | None = None,
    start: StartSpec | None = None,
    lora: LoraSpec | None = None,
    split: SplitSpec | None = None,
    training: DpoTrainingSpec | None = None,
    evaluation: PreferenceEvalSpec | None = None,
    export: ExportSpec | None = None,
):
    """DPO from an SFT artifact already in the store (`start`); the sections of `twinsft.config.DpoRunConfig`."""
    sections = {"preference": preference, "start": start, "lora": lora, "split": split, "training": training,
                "evaluation": evaluation, "export": export}
    stage = DpoStage(**{k: v for k, v in sections.items() if v is not None})
    artifact, info = resolve_start(stage.start)  # pinned now: a new SFT result is a new input
    return dpo_steps(artifact, model=pin_model(model or ModelSpec()), stage=stage, start_info=info)


@pipeline(name="llm_twin", execution_mode=ExecutionMode.FAIL_FAST, model=DEFAULT_TWIN_MODEL)
def twin_pipeline(
    data: DataSpec,
    dpo: DpoStage,
    model: ModelSpec | None = None,
    lora: LoraSpec | None = None,
    split: SplitSpec | None = None,
    training: TrainingSpec | None = None,
    generation: GenerationSpec | None = None,
    export: ExportSpec | None = None,
    promotion: PromotionSpec | None = None,
):
    """The SFT stage (its steps, as `llm_sft` has them), then the DPO stage on its result, in one run: the sections
    of `twinsft.config.TwinRunConfig`. A rerun with the same SFT sections finds the SFT steps cached."""
    model = pin_model(model or ModelSpec())
    adapter, _report, merged = sft_pipeline(data=data, model=model, lora=lora, split=split, training=training,
                                            generation=generation, export=export, promotion=promotion)
    start = adapter if dpo.start.artifact == "lora_adapter" else merged
    return dpo_steps(start, model=model, stage=dpo, start_info={"sft_run": "this run (chained)"})

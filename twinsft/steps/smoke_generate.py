"""Step `smoke_generate`: one greedy answer of the tuned model and whether it stopped at EOS; then base vs
tuned on the first held-out rows (answers, EOS stops, the reference answers' loss)."""

from pathlib import Path
from typing import Annotated

from datasets import Dataset
from zenml import get_step_context, log_metadata, step
from zenml.config import CachePolicy

from twinsft.checks.machine import check_machine
from twinsft.config import GenerationSpec, ModelSpec
from twinsft.generation.evaluate import EvalReport, eval_samples_for, evaluate_held_out
from twinsft.generation.greedy import generate, load_adapted
from twinsft.pinning.code import code_key_of
from twinsft.steps.evaluation_materializer import EvalReportMaterializer
from twinsft.steps.model_folder import ModelFolder, local_dir
from twinsft.steps.visualizations import GenerationMaterializer, SmokeResponse
from twinsft.tracking import existing_experiment

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(
    cache_policy=CachePolicy(cache_func=code_key),
    output_materializers={"smoke_generation": GenerationMaterializer, "evaluation": EvalReportMaterializer},
)
def smoke_generate(
    adapter: ModelFolder | Path,  # Path: a lora_adapter stored by runs before ModelFolder (a replay reuses it)
    test_dataset: Dataset,
    model: ModelSpec,
    generation: GenerationSpec,
) -> tuple[Annotated[str, "smoke_generation"], Annotated[EvalReport, "evaluation"]]:
    """Greedy answer to one instruction in the training prompt: does the model follow it and stop?
    And base vs tuned on the first `generation.eval_samples` rows of the test split (unset: up to 8)."""
    # Preflight could not count the test split when a source is on the Hub or an artifact: bad input
    # still stops here, before the model loads.
    samples = eval_samples_for(generation.eval_samples, len(test_dataset))
    check_machine(model)  # this machine (a pod, on a remote stack), not the client run.py checked
    tuned, tokenizer = load_adapted(model, local_dir(adapter))  # copied from the artifact store
    out = generate(tuned, tokenizer, generation.instruction, generation.max_new_tokens)
    log_metadata(
        {
            "instruction": out.instruction,
            "non_empty": out.non_empty,
            "stopped_at_eos": out.stopped_at_eos,
            "new_tokens": out.new_tokens,
            "model_revision": model.weights_id(),  # pinned at submit: Hub commit or local files' digest
        },
        infer_artifact=True,
        artifact_name="smoke_generation",
    )
    report = evaluate_held_out(tuned, tokenizer, test_dataset["text"], samples, generation.max_new_tokens)
    log_metadata(report.summary(), infer_artifact=True, artifact_name="evaluation")
    context = get_step_context()
    if context.model_version is not None:
        log_metadata(report.summary(), infer_model=True)
    # Into the training run's Comet experiment, when it had one (its key is on the adapter).
    with existing_experiment(context.inputs["adapter"][0].run_metadata, name=context.pipeline_run.name) as comet:
        comet.log_generation(out.instruction, out.response, out.stopped_at_eos, out.new_tokens)
        comet.log_metrics(report.summary())
    return SmokeResponse(out.response, out.instruction, out.stopped_at_eos, out.new_tokens), report

"""Step `evaluate_dpo`: the SFT model and the DPO model side by side on held-out pairs."""

from typing import Annotated

from datasets import Dataset
from zenml import get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.types import MarkdownString

from twinsft.checks.machine import check_machine
from twinsft.config import DpoTrainingSpec, ModelSpec, PreferenceEvalSpec
from twinsft.generation.preferences import PreferenceEvaluation, evaluate_preferences, load_sft_and_dpo
from twinsft.pinning.code import code_key_of
from twinsft.steps.model_folder import ModelFolder, local_dir
from twinsft.training.dpo import policy_start

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(cache_policy=CachePolicy(cache_func=code_key))
def evaluate_dpo(
    dpo_adapter: ModelFolder,
    test_pairs: Dataset,
    start: ModelFolder,
    model: ModelSpec,
    training: DpoTrainingSpec,
    evaluation: PreferenceEvalSpec,
    start_artifact: str = "merged_model",
) -> tuple[Annotated[PreferenceEvaluation, "preference_evaluation"], Annotated[MarkdownString, "preference_report"]]:
    """Preference accuracy (summed log-probabilities), mean margin and chosen loss of both models, their greedy
    answers and EOS rate, and DPO's implicit-reward accuracy and margin against the SFT reference."""
    check_machine(model)
    policy_model, sft_adapter = policy_start(model, local_dir(start), start_artifact)
    both, tokenizer, as_sft, as_dpo = load_sft_and_dpo(policy_model, local_dir(dpo_adapter), sft_adapter)
    pairs = list(test_pairs)[: evaluation.pairs or len(test_pairs)]
    result = evaluate_preferences(both, tokenizer, pairs, as_sft=as_sft, as_dpo=as_dpo, beta=training.beta,
                                  greedy_prompts=evaluation.greedy_prompts, max_new_tokens=evaluation.max_new_tokens,
                                  test_pairs=len(test_pairs))
    summary = result.summary()
    log_metadata(summary, infer_artifact=True, artifact_name="preference_evaluation")
    if get_step_context().model_version is not None:
        log_metadata(summary, infer_model=True)
    return result, MarkdownString(result.markdown())

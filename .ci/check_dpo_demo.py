"""CI: hold the DPO demo (`run.py --config configs/dpo-demo.yaml`, after `make demo`) to its promise, on its latest
run: held-out preference accuracy of the DPO model at least 0.80 and 0.25 above the SFT model's, DPO's implicit
reward margin above 0, the DPO model's greedy answers stopping at EOS at least as often as the SFT model's. Its
wall time is printed (the 6-minute goal is a measurement, not a check: timings never fail CI)."""

from zenml.client import Client

run = Client().get_pipeline("llm_dpo").last_run
s = run.steps["evaluate_dpo"].outputs["preference_evaluation"][0].load().summary()
minutes = (run.end_time - run.start_time).total_seconds() / 60
print(f"dpo demo check: preference accuracy SFT {s['sft_preference_accuracy']:.2f} -> DPO "
      f"{s['dpo_preference_accuracy']:.2f} ({s['eval_pairs']} held-out pairs), implicit reward margin "
      f"{s['dpo_reward_margin']:.3f} (accuracy {s['dpo_reward_accuracy']:.2f}), EOS rate SFT {s['sft_eos_rate']} "
      f"DPO {s['dpo_eos_rate']}, {minutes:.1f} min")
assert s["dpo_preference_accuracy"] >= 0.80, "the DPO model's held-out preference accuracy is below 0.80"
assert s["preference_accuracy_gain"] >= 0.25, "the DPO model's preference accuracy is not 0.25 above the SFT model's"
assert s["dpo_reward_margin"] > 0, "DPO's implicit reward margin is not above 0"
assert s["dpo_eos_rate"] >= s["sft_eos_rate"], "the DPO model stops at EOS less often than the SFT model"

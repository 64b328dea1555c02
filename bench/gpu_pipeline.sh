#!/usr/bin/env bash
# The whole pipeline (every step, local orchestrator) on a CUDA machine for Unsloth and TRL + PEFT, LoRA and
# QLoRA, on a small random-weight Llama; then the DPO stage for each backend and LoRA/QLoRA, as the LLM Twin's
# two stages in one run (the SFT case's config merged with the overlay bench/configs/dpo/BACKEND.yaml: its SFT steps
# are cached from the SFT case). Usage:
#   [CASES="trl-lora ..."] [DPO_CASES="trl-lora ..."] bench/gpu_pipeline.sh TOKENIZER_DIR [LOG_DIR]
# TOKENIZER_DIR: a tokenizer saved by the project (python -m bench.random_llama --export-tokenizer DIR).
# train_sft trains on every GPU of the machine (training.num_processes: auto); TWINSFT_LAUNCHER=torchrun
# sends a one-GPU run through torchrun too.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
tok=$1 logs=${2:-outputs/gpu-pipeline}
mkdir -p "$logs"
$PY -m bench.random_llama --shape smoke --tokenizer "$tok" --out outputs/bench/random-smoke >/dev/null || exit 1
status=0
for c in ${CASES:-unsloth-lora unsloth-lora-fp8 unsloth-lora-response unsloth-qlora trl-lora trl-qlora}; do
  $PY run.py --config "bench/configs/smoke-$c.yaml" >"$logs/$c.log" 2>&1
  rc=$?; [ $rc = 0 ] || status=1
  echo "== $c: exit $rc"
  grep -E "training on [0-9]+ processes|memory plan|Step .* has (started|finished)|eval loss (before|after)|Quantizing|gguf|^error" "$logs/$c.log" | cut -c1-160 | tail -16
done
for c in ${DPO_CASES-unsloth-lora unsloth-qlora trl-lora trl-qlora}; do
  $PY run.py --config "bench/configs/smoke-$c.yaml" --config "bench/configs/dpo/${c%%-*}.yaml" \
    >"$logs/dpo-$c.log" 2>&1
  rc=$?; [ $rc = 0 ] || status=1
  echo "== dpo-$c: exit $rc"
  grep -E "^  [a-z_]+ +(completed|cached|failed)|Held-out pairs|DPO implicit|Unsloth|^error" "$logs/dpo-$c.log" \
    | cut -c1-160 | tail -20
done
exit $status

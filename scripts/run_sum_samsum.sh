#!/usr/bin/env bash
# Published recipe for sum_samsum (the FREE authors' released scripts), method chosen by METHOD, stage by STAGE; see scripts/_recipe.sh.
#   bash scripts/run_sum_samsum.sh                          # FREE training (shallowdeep_kd_dyna)
#   METHOD=calm STAGE=eval bash scripts/run_sum_samsum.sh   # evaluate with CALM decoding
source "$(dirname "${BASH_SOURCE[0]}")/_recipe.sh"
ENTRY=run_summarization.py; MODEL=${MODEL:-t5-large}; MODEL_TYPE=t5; NAME=sum_samsum
S=${S:-6}; CALM_MIN=${CALM_MIN:-4}; STATIC=${STATIC:-6}
DATA_ARGS=(--dataset_name samsum --source_prefix "summarize: " --max_source_length 512 --max_target_length 128)
SMOKE_DATA_ARGS=(--train_file "$ROOT/outputs/smoke/data/dialogsum/train.jsonl" --validation_file "$ROOT/outputs/smoke/data/dialogsum/validation.jsonl")
TRAIN_ARGS=(--optim adafactor --learning_rate 1e-4 --save_total_limit 1 --load_best_model_at_end
  --metric_for_best_model rougeLsum --eval_strategy steps --per_device_train_batch_size 4 --num_train_epochs 20 --save_steps 5475 --eval_steps 5475)
run_recipe

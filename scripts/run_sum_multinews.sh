#!/usr/bin/env bash
# Published recipe for sum_multinews (the FREE authors' released scripts), method chosen by METHOD, stage by STAGE; see scripts/_recipe.sh.
#   bash scripts/run_sum_multinews.sh                          # FREE training (shallowdeep_kd_dyna)
#   METHOD=calm STAGE=eval bash scripts/run_sum_multinews.sh   # evaluate with CALM decoding
source "$(dirname "${BASH_SOURCE[0]}")/_recipe.sh"
ENTRY=run_summarization.py; MODEL=${MODEL:-google/long-t5-tglobal-base}; MODEL_TYPE=longt5; NAME=sum_multinews
S=${S:-6}; CALM_MIN=${CALM_MIN:-4}; STATIC=${STATIC:-6}
DATA_ARGS=(--dataset_name multi_news --source_prefix "summarize: " --max_source_length 2048 --max_target_length 512)
SMOKE_DATA_ARGS=(--train_file "$ROOT/outputs/smoke/data/news/train.jsonl" --validation_file "$ROOT/outputs/smoke/data/news/validation.jsonl")
TRAIN_ARGS=(--optim adafactor --learning_rate 1e-4 --save_total_limit 1 --load_best_model_at_end
  --metric_for_best_model rougeLsum --eval_strategy steps --per_device_train_batch_size 2 --num_train_epochs 3 --save_steps 1000 --eval_steps 1000)
run_recipe

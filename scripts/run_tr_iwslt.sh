#!/usr/bin/env bash
# Published recipe for tr_iwslt (the FREE authors' released scripts), method chosen by METHOD, stage by STAGE; see scripts/_recipe.sh.
#   bash scripts/run_tr_iwslt.sh                          # FREE training (shallowdeep_kd_dyna)
#   METHOD=calm STAGE=eval bash scripts/run_tr_iwslt.sh   # evaluate with CALM decoding
source "$(dirname "${BASH_SOURCE[0]}")/_recipe.sh"
ENTRY=run_translation.py; MODEL=${MODEL:-t5-large}; MODEL_TYPE=t5; NAME=tr_iwslt
S=${S:-6}; CALM_MIN=${CALM_MIN:-4}; STATIC=${STATIC:-6}
DATA_ARGS=(--dataset_name iwslt2017 --dataset_config_name iwslt2017-de-en --source_lang de --target_lang en --source_prefix "translate German to English: " --max_source_length 1024 --max_target_length 128)
SMOKE_DATA_ARGS=(--train_file "$ROOT/outputs/smoke/data/iwslt_de_en/train.jsonl" --validation_file "$ROOT/outputs/smoke/data/iwslt_de_en/validation.jsonl")
TRAIN_ARGS=(--optim adafactor --learning_rate 1e-4 --save_total_limit 1 --load_best_model_at_end
  --metric_for_best_model bleu --eval_strategy steps --per_device_train_batch_size 2 --num_train_epochs 2 --save_steps 5152 --eval_steps 5152)
run_recipe

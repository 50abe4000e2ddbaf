#!/usr/bin/env bash
# Published recipe for qa_squad (the FREE authors' released scripts), method chosen by METHOD, stage by STAGE; see scripts/_recipe.sh.
#   bash scripts/run_qa_squad.sh                          # FREE training (shallowdeep_kd_dyna)
#   METHOD=calm STAGE=eval bash scripts/run_qa_squad.sh   # evaluate with CALM decoding
source "$(dirname "${BASH_SOURCE[0]}")/_recipe.sh"
ENTRY=run_question_answering.py; MODEL=${MODEL:-t5-large}; MODEL_TYPE=t5; NAME=qa_squad
S=${S:-6}; CALM_MIN=${CALM_MIN:-4}; STATIC=${STATIC:-6}
DATA_ARGS=(--dataset_name squad --max_seq_length 512 --doc_stride 128 --max_answer_length 30)
SMOKE_DATA_ARGS=(--train_file "$ROOT/outputs/smoke/data/squad/train.json" --validation_file "$ROOT/outputs/smoke/data/squad/validation.json")
TRAIN_ARGS=(--optim adafactor --learning_rate 1e-4 --save_total_limit 1 --load_best_model_at_end
  --metric_for_best_model f1 --eval_strategy steps --per_device_train_batch_size 4 --num_train_epochs 10 --save_steps 5475 --eval_steps 5475)
run_recipe

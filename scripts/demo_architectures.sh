#!/usr/bin/env bash
# Other families: small BART, LLaMA, Qwen2-style and Flan-T5-style (T5 v1.1: gated GELU, untied head) models
# trained with FREE's losses on generated dialogue summaries, then every decoding method timed against HF
# generate() in the same run (and, for the decoder-only ones, HF's generate(assistant_early_exit=S)).
# About 10 minutes per family on 2 CPU cores. OUT=... changes the folder; STEPS=... the training length;
# TYPES="qwen2 t5v1_1" a subset.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
OUT="${OUT:-outputs/arch}"
STEPS="${STEPS:-1500}"
python scripts/make_data.py --out_dir "$OUT/data" --n_train 4000 --n_val 200 --n_test 200 --seed 0
TYPES="${TYPES:-bart llama qwen2 t5v1_1}"
for TYPE in $TYPES; do
  LR=$([ "$TYPE" = bart ] && echo 1e-3 || echo 3e-3)  # post-LN BART's deep layers diverge at 3e-3
  python scripts/build_model.py --model_type "$TYPE" --out_dir "$OUT/${TYPE}_init" --d_model 128 --d_ff 512 \
    --num_heads 4 --d_kv 32 --num_layers 4 --num_decoder_layers 6 --vocab_size 4000
  python run_summarization.py --model_name_or_path "$OUT/${TYPE}_init" --output_dir "$OUT/$TYPE" \
    --train_file "$OUT/data/dialogsum/train.jsonl" --validation_file "$OUT/data/dialogsum/validation.jsonl" \
    --source_prefix "summarize: " --max_source_length 256 --max_target_length 64 \
    --do_train --do_eval --predict_with_generate --max_eval_samples 100 --overwrite_output_dir \
    --per_device_train_batch_size 16 --per_device_eval_batch_size 16 --learning_rate "$LR" --warmup_steps 50 \
    --lr_scheduler_type linear --max_steps "$STEPS" --logging_steps 100 --save_strategy no --report_to none \
    --seed 0 --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna \
    --shallow_exit_layer 2 --distill_layer_alpha 0.5
  python scripts/benchmark.py --model_name_or_path "$OUT/$TYPE" \
    --validation_file "$OUT/data/dialogsum/validation.jsonl" --max_samples 60 --max_source_length 256 \
    --max_new_tokens 64 --shallow_exit_layer 2 --static_layers 2 --free_thresholds 0.8 --calm_thresholds 0.8 \
    --adapt_init 0.8 --repeats 3 $(case $TYPE in llama|qwen2) echo --assistant_early_exit;; esac) \
    --output_dir "$OUT/$TYPE/benchmark"
done
for TYPE in $TYPES; do cat "$OUT/$TYPE/benchmark/results.md"; done

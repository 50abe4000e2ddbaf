#!/usr/bin/env bash
# The demo, end to end on a fresh clone (13-21 minutes on 2 CPU cores, install included):
#   1. generated SAMSum-like dialogue-summarization data (no download),
#   2. a tokenizer trained on generated text and a small T5 built from a config (random init),
#   3. FREE training (shallowdeep_kd_dyna, shallow exit at decoder layer 2 of 6), evaluated with ROUGE
#      next to a lead-sentence baseline computed in the same run,
#   4. every decoding method on the trained checkpoint, timed against HF generate() in one run, at batch
#      size 1 and 8 (tokens/s per batch size in $OUT/benchmark/batch_sweep.md).
# Outputs land in outputs/demo (OUT=... to change). STEPS=... shortens or lengthens training.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
OUT="${OUT:-outputs/demo}"
STEPS="${STEPS:-1800}"
SAMPLES="${SAMPLES:-60}"
start=$(date +%s)

python scripts/make_data.py --out_dir "$OUT/data" --n_train 4000 --n_val 200 --n_test 200 --seed 0
python scripts/build_model.py --out_dir "$OUT/init" --d_model 128 --d_ff 512 --num_heads 4 --d_kv 32 \
  --num_layers 4 --num_decoder_layers 6 --vocab_size 4000

python run_summarization.py \
  --model_name_or_path "$OUT/init" \
  --train_file "$OUT/data/dialogsum/train.jsonl" --validation_file "$OUT/data/dialogsum/validation.jsonl" \
  --source_prefix "summarize: " --max_source_length 256 --max_target_length 64 \
  --do_train --do_eval --predict_with_generate --lead_baseline True \
  --output_dir "$OUT/model" --overwrite_output_dir \
  --per_device_train_batch_size 16 --per_device_eval_batch_size 32 --max_eval_samples 200 \
  --learning_rate 3e-3 --warmup_steps 50 --lr_scheduler_type linear --max_steps "$STEPS" \
  --logging_steps 100 --save_strategy no --report_to none --seed 0 \
  --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna \
  --shallow_exit_layer 2 --distill_layer_alpha 0.5

python scripts/benchmark.py --model_name_or_path "$OUT/model" \
  --validation_file "$OUT/data/dialogsum/validation.jsonl" --max_samples "$SAMPLES" --max_source_length 256 \
  --max_new_tokens 64 --shallow_exit_layer 2 --static_layers 2 --free_thresholds "${FREE_THRESHOLD:-0.8}" \
  --calm_thresholds "${CALM_THRESHOLD:-0.8}" --adapt_init "${FREE_THRESHOLD:-0.8}" --repeats 3 \
  --batch_size 1 8 --output_dir "$OUT/benchmark"

python - "$OUT" "$start" <<'PY'
import json, sys, time
out, start = sys.argv[1], int(sys.argv[2])
ev = json.load(open(f"{out}/model/eval_results.json"))
print(f"\nvalidation ROUGE-L: model {ev['eval_rougeL']:.2f} vs lead-sentence baseline {ev['eval_lead_rougeL']:.2f}"
      f" (ROUGE-1 {ev['eval_rouge1']:.2f} vs {ev['eval_lead_rouge1']:.2f}); saved in {out}/model/eval_results.json")
print(f"demo wall time: {time.time() - start:.0f} s (after environment set-up)")
PY

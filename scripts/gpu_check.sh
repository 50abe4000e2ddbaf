#!/usr/bin/env bash
# GPU check, meant to fit in 5 minutes on one GPU: the exactness oracles on CUDA (tests/test_cuda.py), then a
# demo-sized model (the demo's generated data and architecture, its training recipe run on the GPU) benchmarked
# with every method against HF generate() on the same GPU, at batch size 1 and 8, profiled on 3 batches (operator
# calls and host syncs per token, profile.md). Tables land in
# $OUT/benchmark/batch_sweep.md and batch_*/results.md. Needs a Python with a CUDA build of torch and the
# project's requirements (PYTHON=..., default: python on PATH). OUT=... changes the folder, STEPS=... training.
set -e
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python}"
OUT="${OUT:-outputs/gpu_check}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: torch sees no CUDA device')"
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py
"$PY" scripts/make_data.py --out_dir "$OUT/data" --n_train 4000 --n_val 60 --n_test 10 --seed 0
"$PY" scripts/build_model.py --out_dir "$OUT/init" --d_model 128 --d_ff 512 --num_heads 4 --d_kv 32 \
  --num_layers 4 --num_decoder_layers 6 --vocab_size 4000
"$PY" run_summarization.py --model_name_or_path "$OUT/init" \
  --train_file "$OUT/data/dialogsum/train.jsonl" --source_prefix "summarize: " --max_source_length 256 \
  --max_target_length 64 --do_train --output_dir "$OUT/model" --overwrite_output_dir \
  --per_device_train_batch_size 16 --learning_rate 3e-3 --warmup_steps 50 --lr_scheduler_type linear \
  --max_steps "${STEPS:-1800}" --logging_steps 300 --save_strategy no --report_to none --disable_tqdm True --seed 0 \
  --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna --shallow_exit_layer 2 \
  --distill_layer_alpha 0.5
"$PY" scripts/benchmark.py --model_name_or_path "$OUT/model" --device cuda \
  --validation_file "$OUT/data/dialogsum/validation.jsonl" --max_samples 30 --max_source_length 256 \
  --max_new_tokens 64 --shallow_exit_layer 2 --static_layers 2 --free_thresholds 0.8 --calm_thresholds 0.8 \
  --adapt_init 0.8 --repeats 2 --batch_size 1 8 --profile 3 --output_dir "$OUT/benchmark"
cat "$OUT/benchmark/batch_sweep.md"

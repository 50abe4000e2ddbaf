# Shared by scripts/run_{sum,qa,tr}_*.sh: turns a published recipe plus METHOD / STAGE into one command.
#
#   METHOD=free|calm|static|full   training loss (train) or decoding method (eval); default free
#   METHOD=layerskip               (train only) LayerSkip's early-exit loss; ROTATION, E_SCALE, LAYER_DROP
#   STAGE=train|eval               fine-tune (then evaluate at full depth) or evaluate a checkpoint; default train
#   SMOKE=1                        the recipe's own flags on a tiny local model and generated data, on CPU, two
#                                  steps with an evaluation and a checkpoint at each (what CI runs)
#   CKPT=path                      checkpoint to evaluate (STAGE=eval); default: this recipe's OUT_DIR
#   THRESHOLD=0.9 ADAPT=False S=.. CALM_MIN=.. STATIC=..   method knobs; EXTRA="..." appends raw flags
# A recipe script sets: ENTRY, MODEL, MODEL_TYPE (t5|longt5|llama), NAME, DATA_ARGS, SMOKE_DATA_ARGS (the local files
# and columns that replace the hub dataset), TRAIN_ARGS,
# S, CALM_MIN, STATIC, METRIC, then calls run_recipe.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

run_recipe() {
  METHOD="${METHOD:-free}"; STAGE="${STAGE:-train}"; THRESHOLD="${THRESHOLD:-0.9}"; ADAPT="${ADAPT:-False}"
  OUT_DIR="${OUT_DIR:-$ROOT/outputs/${NAME}_${METHOD}}"
  local model="$MODEL" data=("${DATA_ARGS[@]}") train=("${TRAIN_ARGS[@]}")
  local common=(--predict_with_generate --report_to none)
  if [ "${SMOKE:-0}" = "1" ]; then
    local smoke="$ROOT/outputs/smoke"
    [ -f "$smoke/data/dialogsum/train.jsonl" ] || python "$ROOT/scripts/make_data.py" --out_dir "$smoke/data" \
      --n_train 16 --n_val 4 --n_test 4 > /dev/null
    model="$smoke/model_$MODEL_TYPE"
    local chat=()
    if [ "$MODEL_TYPE" = "llama" ]; then chat=(--chat_template); model+="_chat"; fi  # stands in for an instruct model
    [ -f "$model/config.json" ] || python "$ROOT/scripts/build_model.py" --out_dir "$model" --model_type "$MODEL_TYPE" \
      --vocab_size 500 --d_model 32 --d_ff 64 --num_heads 2 --d_kv 16 --num_layers 2 --num_decoder_layers 4 \
      --corpus_lines 1500 "${chat[@]}" > /dev/null
    # the recipe's own data flags (lengths, prefix, languages), with its hub dataset replaced by generated files
    data=()
    local a skip=0
    for a in "${DATA_ARGS[@]}"; do
      if [ "$skip" = 1 ]; then skip=0; continue; fi
      case "$a" in --dataset_name|--dataset_config_name|--train_file|--validation_file) skip=1; continue ;; esac
      data+=("$a")
    done
    data+=("${SMOKE_DATA_ARGS[@]}")
    # and its own training flags (optimizer, schedule, best-checkpoint metric), capped at two steps
    train+=(--max_steps 2 --save_steps 1 --eval_steps 1 --logging_steps 1)
    common+=(--use_cpu --per_device_eval_batch_size 2)
    S=2; CALM_MIN=1; STATIC=2
    OUT_DIR="$smoke/${NAME}_${METHOD}"
  fi
  local method=()
  case "$METHOD:$STAGE" in
    free:train)   method=(--output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna
                          --shallow_exit_layer "$S" --distill_layer_alpha 0.5 --do_layer_transformation False) ;;
    layerskip:train)
                  method=(--output_hidden_states_decoder True --intermediate_loss_fn layerskip
                          --early_exit_rotation "${ROTATION:-4}" --early_exit_scale "${E_SCALE:-1.0}"
                          --layer_dropout_max "${LAYER_DROP:-0.1}") ;;
    calm:train|static:train)
                  method=(--output_hidden_states_decoder True --intermediate_loss_fn weighted_ce) ;;
    free:eval)    method=(--deploy_scenario True --use_shallow_deep True --shallow_exit_layer "$S"
                          --shallow2deep_conf_type softmax --shallow2deep_conf_threshold "$THRESHOLD"
                          --use_adapt_threshold "$ADAPT") ;;
    calm:eval)    method=(--deploy_scenario True --use_early_exit True --exit_conf_type softmax
                          --exit_conf_threshold "$THRESHOLD" --exit_min_layer "$CALM_MIN") ;;
    static:eval)  method=(--deploy_scenario True --static_exit_layer "$STATIC") ;;
    full:train)   method=() ;;
    full:eval)    method=(--deploy_scenario True) ;;
    *) echo "METHOD must be free|calm|static|full (or layerskip with STAGE=train) and STAGE train|eval (got $METHOD / $STAGE)" >&2; exit 2 ;;
  esac
  local cmd=()
  if [ "$STAGE" = "train" ]; then
    cmd=(--model_name_or_path "$model" --do_train --do_eval --output_dir "$OUT_DIR" --overwrite_output_dir
         "${train[@]}")
  else
    cmd=(--model_name_or_path "${CKPT:-$OUT_DIR}" --do_eval --output_dir "${OUT_DIR}_eval" --overwrite_output_dir)
  fi
  local launcher=(python)
  local ngpu
  ngpu=$(python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
  if [ "${SMOKE:-0}" != "1" ] && [ "$ngpu" -gt 1 ] && [ "$STAGE" = "train" ]; then
    launcher=(torchrun --nproc_per_node="$ngpu")
  fi
  # shellcheck disable=SC2086
  set -x
  "${launcher[@]}" "$ROOT/$ENTRY" "${cmd[@]}" "${data[@]}" "${common[@]}" "${method[@]}" ${EXTRA:-}
}

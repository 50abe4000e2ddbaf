"""Argument dataclasses shared by the three task entry points, and the exit configuration.

Exit settings live on the model config (as top-level fields, the layout the published code's
`update_autoconfig` wrote, so its checkpoints load unchanged). A CLI flag that is given overrides the
checkpoint's value; a flag that is not given keeps it. `AdditionalArguments` therefore defaults to
None everywhere and `EXIT_DEFAULTS` holds the real defaults.
"""

import dataclasses
import sys
import typing
from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments

from util.bmm import DEFAULTS as BMM_DEFAULTS
from util.errors import InputError

LOSS_FNS = ("ce", "weighted_ce", "shallowdeep_ce", "shallowdeep_kd_last", "shallowdeep_kd_unif", "shallowdeep_kd_dyna",
            "layerskip")
CONF_TYPES = ("softmax", "softmax_max", "state", "meta")

# Flags of the published scripts that this framework accepts so their command lines run, but that change nothing
# here: each one given gets one warning saying so (task_flow.parse_args).
NO_EFFECT_FLAGS = {
    "use_synchronize": "timing here measures whole generate() calls, never synchronising per operation",
    "forced_bos_token": "a first generated token is forced through the checkpoint's generation_config "
                        "(forced_bos_token_id), which generate() applies",
    "null_score_diff_threshold": "generative QA decodes an answer; there are no span scores to threshold",
    "n_best_size": "generative QA decodes one answer; there are no candidate spans to rank",
}

# The published defaults (the FREE authors' released code), plus our additions at the end.
EXIT_DEFAULTS = {
    "deploy_scenario": False,
    "use_synchronize": False,  # published default True needs CUDA; we time whole calls instead
    "output_hidden_states_decoder": False,
    "intermediate_loss_fn": None,
    "distill_layer_alpha": None,
    "do_layer_transformation": False,
    "early_exit_rotation": 1,
    "early_exit_scale": 1.0,
    "layer_dropout_max": 0.0,
    "static_exit_layer": None,
    "use_early_exit": False,
    "exit_conf_type": None,
    "exit_conf_threshold": 1.0,
    "exit_position_temp": None,
    "exit_min_layer": None,
    "train_meta_cm_head": False,
    "use_shallow_deep": False,
    "shallow_exit_layer": None,
    "shallow2deep_conf_type": None,
    "shallow2deep_conf_threshold": 1.0,
    "parallel_gen_token": True,
    "copy_skipped_hidden_states": False,
    "parallel_causal_mask": True,
    "rollback_conf_threshold": None,
    "use_adapt_threshold": False,
    "exact_verification": False,
    "deep_pass_wait": 1.0,
    "max_draft_tokens": None,
    "exit_shortlist_size": None,
    "fast_kernels": False,
    "exit_decay_variant": "calm",
    **{f"adapt_{k}": v for k, v in BMM_DEFAULTS.items()},
    "adapt_window": None,
    "adapt_explore_every": None,
    "use_lora": False,
    "lora_rank": 8,
    "lora_alpha": 8,
    "lora_dropout": 0.1,
    "lora_target_modules": None,
}
# LoRA's fields describe one training run; they are not written to the config.
_LORA_FIELDS = ("use_lora", "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules")
# Fields that describe how a checkpoint was trained: switching the decoding method leaves them as they are.
TRAINING_FIELDS = ("intermediate_loss_fn", "distill_layer_alpha", "output_hidden_states_decoder",
                   "do_layer_transformation", "train_meta_cm_head", *_LORA_FIELDS)
# How to decode: the exit settings that are generation settings (generate() keywords, a GenerationConfig's fields,
# generation_config.json). The rest say how a checkpoint was trained or how an evaluation run is measured.
DECODING_FIELDS = tuple(k for k in EXIT_DEFAULTS if k not in (
    *TRAINING_FIELDS, "deploy_scenario", "use_synchronize", "early_exit_rotation", "early_exit_scale",
    "layer_dropout_max"))


def _opt(help_text, **kw):
    return field(default=None, metadata={"help": help_text, **kw})


@dataclass
class AdditionalArguments:
    """Early-exit flags, named as in the published code. Unset flags keep the checkpoint's value."""

    deploy_scenario: bool | None = _opt("Measure decoding: wall time around whole generate calls and the exit counts "
                                        "(batch size 1 unless --per_device_eval_batch_size is given).")
    use_synchronize: bool | None = _opt("Accepted for compatibility; timing never syncs per operation.")
    output_hidden_states_decoder: bool | None = _opt(
        "Collect every decoder layer's normalised hidden state (needed by intermediate losses and the meta head)."
    )
    intermediate_loss_fn: str | None = _opt("Exit loss.", choices=LOSS_FNS)
    distill_layer_alpha: float | None = _opt("Weight of the hidden-state distillation term (MSE) in *_kd_* losses.")
    do_layer_transformation: bool | None = _opt("Linear map on student hidden states inside the KD loss.")
    early_exit_rotation: int | None = _opt(
        "layerskip loss: exits at every R-th layer, moved one layer deeper each step, plus the last layer (LayerSkip's "
        "rotational curriculum); 1 (default): every layer at every step.")
    early_exit_scale: float | None = _opt("layerskip loss: weight of the early exits against the last layer (1.0).")
    layer_dropout_max: float | None = _opt(
        "layerskip loss: LayerSkip's layer dropout in training, rising exponentially with depth from 0 at the first "
        "layer to this probability at the last (decoder-only; default 0: none).")
    static_exit_layer: int | None = _opt("Decode with the first k decoder layers only (evaluation).")
    use_early_exit: bool | None = _opt("CALM: per-layer confidence exit.")
    exit_conf_type: str | None = _opt("CALM confidence measure.", choices=CONF_TYPES)
    exit_conf_threshold: float | None = _opt("CALM threshold; a token exits iff confidence > threshold.")
    exit_position_temp: float | None = _opt("CALM decaying threshold temperature tau.")
    exit_min_layer: int | None = _opt("First layer at which CALM may exit.")
    train_meta_cm_head: bool | None = _opt("Train only the meta confidence head (model frozen).")
    use_shallow_deep: bool | None = _opt("FREE: shallow-deep module.")
    shallow_exit_layer: int | None = _opt("FREE shallow exit layer S, 1 <= S < number of decoder layers.")
    shallow2deep_conf_type: str | None = _opt("FREE confidence measure.", choices=CONF_TYPES)
    shallow2deep_conf_threshold: float | None = _opt("FREE threshold (initial one with --use_adapt_threshold).")
    parallel_gen_token: bool | None = _opt("FREE synchronized parallel decoding of skipped tokens.")
    copy_skipped_hidden_states: bool | None = _opt("FREE variant: copy the shallow state into deep K/V.")
    parallel_causal_mask: bool | None = _opt("Causal mask inside the parallel pass.")
    rollback_conf_threshold: float | None = _opt("FREE rollback: CE threshold on stacked shallow tokens.")
    deep_pass_wait: float | None = _opt(
        "FREE in a batch: a row whose token the deep layers must decide goes on with the shallow prediction on "
        "trial until this share of the unfinished rows have such tokens; one deep pass then settles them all and "
        "cuts a row back where the deep layers disagree. Outputs do not change, only the schedule (throughput); "
        "0: a deep pass at every such token, as published (always so at batch size 1, and for the copy and "
        "bidirectional variants, whose passes need one trial token at the end).")
    max_draft_tokens: int | None = _opt(
        "FREE: at most this many exits in a row; the next token goes deep and the deep pass verifies the run "
        "(draft-length control; the confidence threshold stops a run earlier).")
    exit_shortlist_size: int | None = _opt(
        "FREE / CALM: confidence-gated exits score only the checkpoint's K most frequent output tokens "
        "(exit_token_ranking in its config); the final layer always scores the whole vocabulary.")
    fast_kernels: bool | None = _opt(
        "Decode with the product layout that is fastest on a CPU for each shape (float32); rounds differently "
        "from HF's modules, so outputs equal our own full path's, and HF generate's up to near-ties.")
    use_adapt_threshold: bool | None = _opt("FREE adaptive threshold (Beta mixture).")
    exact_verification: bool | None = _opt(
        "FREE: check every stacked shallow token against the deep pass and cut back at the first disagreement "
        "(greedy output identical to the full model).")
    exit_decay_variant: str | None = _opt("Decaying threshold formula: calm (paper) or published (code).",
                                          choices=("calm", "published"))
    adapt_grid_min: float | None = _opt("Adaptive threshold: lowest candidate (default 0.3).")
    adapt_grid_max: float | None = _opt("Adaptive threshold: highest candidate (default 0.9).")
    adapt_grid_points: int | None = _opt("Adaptive threshold: number of candidates (default 10).")
    adapt_zeta: float | None = _opt("Adaptive threshold: required P(shallow agrees with deep | confidence) (0.4).")
    adapt_max_updates: int | None = _opt("Adaptive threshold: number of refits before it freezes (default 300).")
    adapt_window: int | None = _opt("Adaptive threshold: keep only the newest N calibration pairs.")
    adapt_explore_every: int | None = _opt(
        "Adaptive threshold: every N-th confident step of each sequence still goes deep, so high thresholds keep "
        "getting data (counted per sequence, so a row's decisions do not depend on the rest of its batch).")
    use_lora: bool | None = _opt("Train with LoRA adapters (peft).")
    lora_rank: int | None = _opt("LoRA rank (default 8).")
    lora_alpha: int | None = _opt("LoRA alpha (default 8).")
    lora_dropout: float | None = _opt("LoRA dropout (default 0.1).")
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "LoRA target modules, e.g. q k v o wi wo.", "nargs": "+"}
    )

    def given(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def resolved(self, config=None) -> dict:
        """Flags given on the command line, else the checkpoint's config, else the defaults."""
        out = dict(EXIT_DEFAULTS)
        if config is not None:
            out.update({k: getattr(config, k) for k in EXIT_DEFAULTS if getattr(config, k, None) is not None})
        given = self.given()
        if given.get("train_meta_cm_head") and "intermediate_loss_fn" not in given:
            # the checkpoint's loss says how it was trained; this run trains the meta head on it, alone
            out["intermediate_loss_fn"] = None
        out.update(given)
        return out


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Local folder or hub id of the model."})
    config_name: str | None = field(default=None, metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer name or path (needed for checkpoints saved without one)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where hub downloads are stored."})
    use_fast_tokenizer: bool = field(default=True)
    model_revision: str = field(default="main")
    token: str | None = field(default=None, metadata={"help": "Hub token for private models."})
    gguf_file: str | None = field(
        default=None, metadata={"help": "A GGUF file inside --model_name_or_path (a folder or hub repo), passed to "
                                        "from_pretrained of the config, tokenizer and model as transformers does "
                                        "(weights dequantized on load; scripts/import_gguf.py saves an HF folder "
                                        "once instead, which loads much faster)."})


DEFAULT_SUMMARY_INSTRUCTION = "Summarize the following dialogue in one sentence."
LANGUAGE_NAMES = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch",
                  "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "zh": "Chinese", "ja": "Japanese"}


def default_instruction(source_lang: str | None = None, target_lang: str | None = None) -> str:
    """--instruction's default: translation when the languages are given, else summarization."""
    if source_lang and target_lang:
        name = lambda code: LANGUAGE_NAMES.get(code, code)  # noqa: E731
        return f"Translate the following {name(source_lang)} text to {name(target_lang)}."
    return DEFAULT_SUMMARY_INSTRUCTION


@dataclass
class DataArguments:
    """Fields common to the three tasks."""

    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset name."})
    dataset_config_name: str | None = field(default=None)
    train_file: str | None = field(default=None, metadata={"help": "json, jsonl or csv file."})
    validation_file: str | None = field(default=None)
    test_file: str | None = field(default=None)
    overwrite_cache: bool = field(default=False)
    preprocessing_num_workers: int | None = field(default=None)
    max_source_length: int = field(default=512)
    max_target_length: int = field(default=128)
    val_max_target_length: int | None = field(
        default=None, metadata={"help": "Generation length in evaluation; defaults to max_target_length."}
    )
    pad_to_max_length: bool = field(default=False)
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    max_predict_samples: int | None = field(default=None)
    num_beams: int | None = field(default=None)
    ignore_pad_token_for_loss: bool = field(default=True)
    source_prefix: str = field(default="", metadata={"help": "Prepended to every source, e.g. 'summarize: '."})
    decoder_only_separator: str = field(
        default="\nSummary: ", metadata={"help": "Decoder-only models: text between the source and the target "
                                                 "(unused with --use_chat_template)."})
    use_chat_template: bool = field(
        default=False, metadata={"help": "Decoder-only models with a chat template (instruct checkpoints): the prompt "
                                          "is one user turn, --instruction + a blank line + the source, followed by "
                                          "the assistant header; the target is the answer, closed by the template's "
                                          "end-of-turn token. Only the answer is generated and scored."})
    instruction: str | None = field(
        default=None, metadata={"help": "The task instruction of --use_chat_template (summarization: 'Summarize the "
                                         "following dialogue in one sentence.'; translation: 'Translate the "
                                         "following <source_lang> text to <target_lang>.')."})

    def __post_init__(self):
        if self.val_max_target_length is None:
            self.val_max_target_length = self.max_target_length
        if self.dataset_name is None and not (self.train_file or self.validation_file or self.test_file):
            raise InputError("Give --dataset_name or at least one of --train_file/--validation_file/--test_file.")
        for f in (self.train_file, self.validation_file, self.test_file):
            if f is not None and f.rsplit(".", 1)[-1] not in ("json", "jsonl", "csv"):
                raise InputError(f"{f}: data files must be .json, .jsonl or .csv")


@dataclass
class SummarizationDataArguments(DataArguments):
    text_column: str | None = field(default=None, metadata={"help": "Source column (default per dataset)."})
    summary_column: str | None = field(default=None, metadata={"help": "Target column (default per dataset)."})
    lang: str | None = field(default=None)
    lead_baseline: bool = field(
        default=False, metadata={"help": "Also score the first sentence of each source as a baseline summary."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.instruction is None:
            self.instruction = default_instruction()


@dataclass
class TranslationDataArguments(DataArguments):
    source_lang: str | None = field(default=None, metadata={"help": "Source language id, e.g. de."})
    target_lang: str | None = field(default=None, metadata={"help": "Target language id, e.g. en."})
    forced_bos_token: str | None = field(default=None, metadata={"help": "Accepted for compatibility; unused."})

    def __post_init__(self):
        super().__post_init__()
        if not self.source_lang or not self.target_lang:
            raise InputError("Translation needs --source_lang and --target_lang (e.g. --source_lang de "
                             "--target_lang en)")
        self.source_lang, self.target_lang = self.source_lang.split("_")[0], self.target_lang.split("_")[0]
        if self.instruction is None:
            self.instruction = default_instruction(self.source_lang, self.target_lang)


@dataclass
class QADataArguments(DataArguments):
    context_column: str = field(default="context")
    question_column: str = field(default="question")
    answer_column: str = field(default="answers")
    max_seq_length: int = field(default=384, metadata={"help": "Tokens per input window (question + context)."})
    doc_stride: int = field(default=128, metadata={"help": "Overlap of consecutive context windows, in tokens."})
    max_answer_length: int = field(default=30)
    val_max_answer_length: int | None = field(default=None)
    version_2_with_negative: bool = field(default=False, metadata={"help": "SQuAD v2: some questions have no answer."})
    null_score_diff_threshold: float = field(default=0.0, metadata={"help": "Accepted for compatibility; unused."})
    n_best_size: int = field(default=20, metadata={"help": "Accepted for compatibility; unused."})

    def __post_init__(self):
        super().__post_init__()
        if self.use_chat_template:
            raise InputError("--use_chat_template is not supported by run_question_answering.py yet "
                             "(summarization and translation only)")
        self.max_source_length, self.max_target_length = self.max_seq_length, self.max_answer_length
        self.val_max_target_length = self.val_max_answer_length or self.max_answer_length
        if self.doc_stride >= self.max_seq_length:
            raise InputError(f"--doc_stride {self.doc_stride} must be smaller than --max_seq_length "
                             f"{self.max_seq_length}")


@dataclass
class TrainingArguments(Seq2SeqTrainingArguments):
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train into a non-empty output_dir (removed from the transformers 5 Trainer)."}
    )
    per_device_eval_batch_size: int | None = field(
        default=None, metadata={"help": "Evaluation batch size per device: 8 when not given, 1 with --deploy_scenario "
                                        "(the published latency setting); every exit method decodes batches."}
    )


def alias_argv(argv=None):
    """The README of the published code spells --ouput_hidden_states_decoder; accept it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return [a.replace("--ouput_hidden_states_decoder", "--output_hidden_states_decoder") for a in argv]


def _setting_types() -> dict:
    """{field: (types, choices)} of AdditionalArguments, read at import: HfArgumentParser rewrites the dataclass's
    field types while it builds its parser."""
    out = {}
    for f in dataclasses.fields(AdditionalArguments):
        want = tuple(t for t in typing.get_args(f.type) if t is not type(None))
        out[f.name] = (want if all(isinstance(t, type) for t in want) else (), f.metadata.get("choices"))
    return out


_SETTING_TYPES = _setting_types()


def check_setting_types(s: dict) -> None:
    """InputError for a value of the wrong type or outside its choices (the command line's parser checks these for
    flags; settings from code or JSON arrive unchecked)."""
    for name, (want, choices) in _SETTING_TYPES.items():
        v = s.get(name)
        if v is None:
            continue
        numeric = float in want and type(v) is int
        if want and (not isinstance(v, want) or isinstance(v, bool) is not (bool in want)) and not numeric:
            raise InputError(f"{name}={v!r} must be {' or '.join(t.__name__ for t in want)}")
        if choices and v not in choices:
            raise InputError(f"{name}={v!r} is not one of {choices}")


def validate_exit_settings(s: dict, num_decoder_layers: int, training: bool = False) -> None:
    """Raise InputError (a ValueError) with a readable message for impossible flag combinations."""
    check_setting_types(s)
    L = num_decoder_layers
    loss = s["intermediate_loss_fn"]
    if loss is not None and loss not in LOSS_FNS:
        raise InputError(f"--intermediate_loss_fn {loss!r} is not one of {LOSS_FNS}")
    if training and loss is not None and not s["output_hidden_states_decoder"]:
        raise InputError(f"--intermediate_loss_fn {loss} needs --output_hidden_states_decoder True")
    if loss is not None and loss.startswith("shallowdeep") and s["shallow_exit_layer"] is None:
        raise InputError(f"--intermediate_loss_fn {loss} needs --shallow_exit_layer")
    if loss is not None and "_kd_" in loss and s["distill_layer_alpha"] is None:
        raise InputError(f"--intermediate_loss_fn {loss} needs --distill_layer_alpha (0.5 in the published recipes)")
    if training:
        for name, default in (("early_exit_rotation", 1), ("early_exit_scale", 1.0), ("layer_dropout_max", 0.0)):
            if loss != "layerskip" and s[name] != default:
                raise InputError(f"--{name} applies to --intermediate_loss_fn layerskip (got {loss})")
        if s["early_exit_rotation"] < 1:
            raise InputError(f"--early_exit_rotation {s['early_exit_rotation']} must be >= 1")
        if s["early_exit_scale"] < 0:
            raise InputError(f"--early_exit_scale {s['early_exit_scale']} must be >= 0")
        if not 0.0 <= s["layer_dropout_max"] < 1.0:
            raise InputError(f"--layer_dropout_max {s['layer_dropout_max']} is outside [0, 1)")
    if s["train_meta_cm_head"]:
        if not s["output_hidden_states_decoder"]:
            raise InputError("--train_meta_cm_head needs --output_hidden_states_decoder True")
        if training and loss is not None:
            raise InputError("--train_meta_cm_head trains the head alone: drop --intermediate_loss_fn")
    for name, top in (("shallow_exit_layer", L - 1), ("static_exit_layer", L), ("exit_min_layer", L - 1)):
        k = s[name]  # static_exit_layer L is the full depth, as in the published code
        if k is not None and not 1 <= k <= top:
            raise InputError(f"--{name} {k} is outside 1..{top} (the decoder has {L} layers)")
    for name in ("exit_conf_threshold", "shallow2deep_conf_threshold"):
        if not 0.0 <= s[name] <= 1.0:
            raise InputError(f"--{name} {s[name]} is outside [0, 1]")
    if s["rollback_conf_threshold"] is not None and s["rollback_conf_threshold"] < 0:
        raise InputError("--rollback_conf_threshold is a cross-entropy and must be >= 0")
    if s["distill_layer_alpha"] is not None and s["distill_layer_alpha"] < 0:
        raise InputError("--distill_layer_alpha must be >= 0")
    for name in ("exit_conf_type", "shallow2deep_conf_type"):
        if s[name] is not None and s[name] not in CONF_TYPES:
            raise InputError(f"--{name} {s[name]!r} is not one of {CONF_TYPES}")
    if s["use_shallow_deep"]:
        if s["shallow_exit_layer"] is None:
            raise InputError("--use_shallow_deep needs --shallow_exit_layer")
        if not training and s["shallow2deep_conf_type"] is None:
            raise InputError("--use_shallow_deep needs --shallow2deep_conf_type (softmax, softmax_max, state or meta)")
        if s["shallow2deep_conf_type"] == "state":
            raise InputError("--shallow2deep_conf_type state compares consecutive layers; FREE checks once at S: use "
                             "softmax or meta")
    if s["use_early_exit"] and not training and s["exit_conf_type"] is None:
        raise InputError("--use_early_exit needs --exit_conf_type (softmax, softmax_max, state or meta)")
    if not s["parallel_gen_token"] and not s["copy_skipped_hidden_states"]:
        raise InputError("--parallel_gen_token False needs --copy_skipped_hidden_states True (deep K/V must come from "
                         "somewhere)")
    methods = [m for m, on in (("--static_exit_layer", s["static_exit_layer"] is not None),
                               ("--use_early_exit", s["use_early_exit"]),
                               ("--use_shallow_deep", s["use_shallow_deep"])) if on]
    if len(methods) > 1 and not training:
        raise InputError(f"Choose one decoding method, got {' and '.join(methods)}")
    if not s["parallel_causal_mask"] and (s["copy_skipped_hidden_states"] or s["rollback_conf_threshold"] is not None):
        raise InputError("--parallel_causal_mask False cannot be combined with copying or rollback")
    if s["rollback_conf_threshold"] is not None and s["copy_skipped_hidden_states"]:
        raise InputError("--rollback_conf_threshold needs --copy_skipped_hidden_states False")
    if not 0 <= s["adapt_grid_min"] < s["adapt_grid_max"] <= 1 or s["adapt_grid_points"] < 2:
        raise InputError("--adapt_grid_min/--adapt_grid_max/--adapt_grid_points must span [0, 1] with >= 2 points")
    for name in ("max_draft_tokens", "exit_shortlist_size"):
        if s[name] is not None and s[name] < 1:
            raise InputError(f"--{name} {s[name]} must be >= 1")
    if not 0.0 <= s["deep_pass_wait"] <= 1.0:
        raise InputError(f"--deep_pass_wait {s['deep_pass_wait']} is outside [0, 1]")
    if s["exact_verification"] and (s["copy_skipped_hidden_states"] or not s["parallel_causal_mask"]):
        raise InputError("--exact_verification needs the causal parallel pass: drop --copy_skipped_hidden_states / "
                         "--parallel_causal_mask False")
    if s["use_adapt_threshold"] and not s["use_shallow_deep"] and not training:
        raise InputError("--use_adapt_threshold applies to FREE: add --use_shallow_deep True")


def update_config(config, add_args: AdditionalArguments, max_answer_length=None, training=False) -> dict:
    """Resolve the exit settings, validate them against the decoder depth and write them on the config."""
    settings = add_args.resolved(config)
    try:
        validate_exit_settings(settings, num_decoder_layers(config), training=training)
    except InputError as e:
        given = add_args.given()
        saved = [k for k in EXIT_DEFAULTS if k not in given and getattr(config, k, None) is not None
                 and f"--{k}" in str(e)]
        if saved:  # the user never typed these flags: say where the values came from
            where = getattr(config, "name_or_path", "") or "the checkpoint"
            raise InputError(f"{e} [{', '.join(saved)} from the config.json of {where}; pass the flag to override "
                             f"it]") from None
        raise
    config.update({k: v for k, v in settings.items() if k not in _LORA_FIELDS})
    if max_answer_length is not None:
        config.max_answer_length = max_answer_length
    return settings


def num_decoder_layers(config) -> int:
    for name in ("num_decoder_layers", "decoder_layers", "num_hidden_layers", "num_layers"):
        n = getattr(config, name, None)
        if n is not None:
            return n
    raise ValueError(f"Cannot tell the decoder depth of a {type(config).__name__}")

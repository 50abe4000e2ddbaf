"""The parts of an HF-style entry point that every task shares: arguments, data files, checkpoints, stages, and
the text tasks' whole flow (run_summarization.py and run_translation.py are a TextTask each)."""

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import datasets
import numpy as np
import transformers
from transformers import HfArgumentParser, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from additional_args import NO_EFFECT_FLAGS, AdditionalArguments, ModelArguments, TrainingArguments, alias_argv
from models import load_model_and_tokenizer
from util import checks
from util.chat import causal_lm_features, require_chat_template, stop_at_end_of_turn

logger = logging.getLogger(__name__)


class CliArgumentParser(HfArgumentParser):
    """HfArgumentParser whose errors are InputErrors: run_cli ends them with one line `<script>: error: ...` and
    exit status 2, instead of argparse's usage of every Trainer flag (some 190 lines) before that line."""

    def error(self, message):
        raise checks.InputError(message)


def unrecognized(parser, remaining) -> str:
    """argparse's message for arguments the parser does not know, with the closest known flags."""
    import difflib

    known = [o for a in parser._actions for o in a.option_strings]
    close = [m for a in remaining if a.startswith("--")
             for m in difflib.get_close_matches(a.split("=", 1)[0], known, n=1)]
    return f"unrecognized arguments: {' '.join(remaining)}" + (f" (did you mean {', '.join(close)}?)" if close else "")


def parse_args(data_cls, argv=None):
    """(model_args, data_args, training_args, additional_args) from the CLI or a single .json file.

    Every problem of the flags (unknown, of the wrong type, contradicting each other in a dataclass's
    __post_init__, ours or the Trainer's) is an InputError; a ValueError it was raised as stays its cause."""
    parser = CliArgumentParser((ModelArguments, data_cls, TrainingArguments, AdditionalArguments))
    argv = alias_argv(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        flag = "the arguments file"
        try:
            args = json.loads(checks.read_text(argv[0], flag))
        except ValueError as e:
            raise checks.InputError(f"{flag} {argv[0]}: line {e.lineno} is not valid JSON ({e.msg}, "
                                    f"column {e.colno})") from None
        if not isinstance(args, dict):
            raise checks.InputError(f"{flag} {argv[0]} must hold one JSON object {{flag name: value}}")
        unknown = sorted(set(args) - {a.dest for a in parser._actions})
        if unknown:
            raise checks.InputError(f"{flag} {argv[0]}: unknown key(s) {unknown}")
        parse = lambda: parser.parse_dict(args)  # noqa: E731
        given = set(args)
    else:
        remaining = parser.parse_known_args(argv)[1]  # before any __post_init__ check, which a typo would mislead
        if remaining:
            raise checks.InputError(unrecognized(parser, remaining))
        parse = lambda: parser.parse_args_into_dataclasses(args=argv)  # noqa: E731
        given = {a[2:].split("=")[0] for a in argv if a.startswith("--")}
    try:
        parsed = parse()
    except checks.InputError:
        raise
    except ValueError as e:
        raise checks.InputError(str(e)) from e
    for flag in sorted(given & set(NO_EFFECT_FLAGS)):
        logger.warning(f"--{flag} has no effect here: {NO_EFFECT_FLAGS[flag]} (accepted so the published scripts run)")
    return parsed


def setup(training_args):
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                        datefmt="%m/%d/%Y %H:%M:%S", handlers=[logging.StreamHandler(sys.stdout)])
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    set_seed(training_args.seed)


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")


def checkpoint_problem(path: str) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None. The Trainer writes trainer_state.json last, so a
    run killed while saving leaves a folder without it (or with it cut short)."""
    if not any(os.path.isfile(os.path.join(path, f)) for f in WEIGHT_FILES):
        return "no weights"
    try:
        with open(os.path.join(path, "trainer_state.json")) as f:
            json.load(f)
    except FileNotFoundError:
        return "no trainer_state.json"
    except ValueError:
        return "a cut-short trainer_state.json"
    return None


def last_complete_checkpoint(out: str) -> str | None:
    """The newest checkpoint-N folder that is complete; half-written ones are skipped with a warning."""
    steps = sorted((int(name[len(PREFIX_CHECKPOINT_DIR) + 1:]), name) for name in os.listdir(out)
                   if name.startswith(PREFIX_CHECKPOINT_DIR + "-") and name[len(PREFIX_CHECKPOINT_DIR) + 1:].isdigit()
                   and os.path.isdir(os.path.join(out, name)))
    for _, name in reversed(steps):
        path = os.path.join(out, name)
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning(f"{path} is incomplete ({problem}; a run stopped while saving it?): skipped")
    return None


def detect_last_checkpoint(training_args):
    """The checkpoint to resume from, or None; refuses to train into a non-empty folder by accident."""
    out = training_args.output_dir
    checks.writable_dir(out, "--output_dir")
    if not (os.path.isdir(out) and training_args.do_train) or training_args.overwrite_output_dir:
        return None
    last = last_complete_checkpoint(out)
    if last is None and len(os.listdir(out)) > 0:
        raise checks.InputError(f"Output directory ({out}) already exists and is not empty. "
                                "Use --overwrite_output_dir to train into it anyway.")
    if last is not None and training_args.resume_from_checkpoint is None:
        logger.info(f"Checkpoint detected, resuming training at {last}. Change --output_dir or add "
                    "--overwrite_output_dir to train from scratch.")
    return last


def load_raw_datasets(data_args, model_args):
    if data_args.dataset_name is not None:
        return datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name,
                                     cache_dir=model_args.cache_dir, token=model_args.token)
    files = {split: f for split, f in (("train", data_args.train_file), ("validation", data_args.validation_file),
                                       ("test", data_args.test_file)) if f is not None}
    return checks.load_data_files(files, cache_dir=model_args.cache_dir)


def require_columns(dataset, columns, flag_hint=""):
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise checks.InputError(f"Column(s) {missing} not found in the data; it has {dataset.column_names}. "
                                f"{flag_hint}".rstrip())


def select_split(raw, split, max_samples, needed: bool):
    if not needed:
        return None
    if split not in raw:
        raise checks.InputError(f"This stage needs a '{split}' split: pass the matching --*_file or a dataset that "
                                "has it.")
    ds = raw[split]
    return ds.select(range(min(max_samples, len(ds)))) if max_samples is not None else ds


def train_stage(trainer, training_args, last_checkpoint, train_ds) -> dict:
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or last_checkpoint)
    trainer.save_model()
    metrics = dict(train_result.metrics, train_samples=len(train_ds))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return metrics


def run_stages(trainer, training_args, data_args, last_checkpoint, train_ds, eval_ds, predict_ds,
               gen_kwargs, write_predictions):
    """Train / evaluate / predict as the HF examples do, saving *_results.json and the trainer state."""
    results = train_stage(trainer, training_args, last_checkpoint, train_ds) if training_args.do_train else {}
    if training_args.do_eval:
        metrics = trainer.evaluate(metric_key_prefix="eval", **gen_kwargs)
        metrics["eval_samples"] = len(eval_ds)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)
    if training_args.do_predict:
        out = trainer.predict(predict_ds, metric_key_prefix="predict", **gen_kwargs)
        metrics = dict(out.metrics, predict_samples=len(predict_ds))
        trainer.log_metrics("predict", metrics)
        trainer.save_metrics("predict", metrics)
        if trainer.is_world_process_zero() and training_args.predict_with_generate:
            write_predictions(out)
        results.update(metrics)
    return results


def finish_distributed(trainer):
    """End a torchrun job while every rank is alive. Left to exit-time destructors, the DDP wrapper and the gloo
    group are torn down after the other rank may have exited, which aborted ("terminate called without an
    active exception") or hung a finished 2-process CPU run now and then."""
    import gc

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    trainer.accelerator.free_memory()  # the accelerator's references to the DDP wrapper ...
    trainer.model_wrapped = trainer.model  # ... and the trainer's
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


@dataclass
class TextTask:
    """What a text-to-text task adds to the shared entry point.

    columns(data_args, column_names) -> the columns examples must have; fields(data_args, dataset) -> a function of
    one example giving {label: raw value} of its source and target (checked by util.checks: text, not empty);
    pairs(examples, data_args) -> (sources, targets) as strings, before --source_prefix;
    score(predictions, references) -> metrics.
    """

    data_cls: type
    columns: Callable
    fields: Callable
    pairs: Callable
    score: Callable
    after: Callable | None = None  # after(trainer, data_args, raw_splits, results) for extra reports


def prepare_split(raw, split, max_samples, needed, task, data_args, training_args, tokenize, max_target):
    """(cleaned raw split, tokenized split) or (None, None) when the stage does not need it."""
    ds = select_split(raw, split, max_samples, needed)
    if ds is None:
        return None, None
    fields = task.fields(data_args, ds)  # judged before the prefix, which would make an empty source look non-empty
    kept = checks.usable_rows(ds, split, lambda ex: checks.text_problem(fields(ex)))
    with training_args.main_process_first(desc=f"{split} tokenization"):
        tok = kept.map(tokenize, batched=True, remove_columns=kept.column_names,
                       num_proc=data_args.preprocessing_num_workers, load_from_cache_file=not data_args.overwrite_cache)
    long_src, long_tgt = sum(tok["_long_source"]), sum(tok["_long_target"])
    if long_src or long_tgt:
        logger.warning(f"{split}: truncated {long_src} of {len(tok)} sources to --max_source_length "
                       f"{data_args.max_source_length} tokens and {long_tgt} targets to {max_target} tokens")
    return kept, tok.remove_columns(["_long_source", "_long_target"])


def run_text_task(task: TextTask, argv=None) -> dict:
    """The HF-example flow shared by summarization and translation."""
    from transformers import DataCollatorForSeq2Seq

    from trainers import EarlyExitSeq2SeqTrainer
    from util import metrics as M

    model_args, data_args, training_args, add_args = parse_args(task.data_cls, argv)
    setup(training_args)
    M.ensure_punkt()
    last_checkpoint = detect_last_checkpoint(training_args)
    raw = load_raw_datasets(data_args, model_args)
    for name, ds in raw.items():
        require_columns(ds, task.columns(data_args, ds.column_names))
    model, tokenizer, settings = load_model_and_tokenizer(
        model_args, add_args, max_answer_length=data_args.max_target_length, training=training_args.do_train)
    apply_deploy_scenario(settings, training_args)

    padding = "max_length" if data_args.pad_to_max_length else False
    decoder_only = not getattr(model.config, "is_encoder_decoder", True)
    if getattr(data_args, "use_chat_template", False):
        require_chat_template(tokenizer, decoder_only)
        stop_at_end_of_turn(model, tokenizer)
    if decoder_only:
        tokenizer.padding_side = "left"  # generation continues the prompt on the right

    def tokenize(examples, max_target, train):
        sources, targets = task.pairs(examples, data_args)
        sources = [(data_args.source_prefix or "") + x for x in sources]
        # counted here, where the limits apply, for one warning per split
        special = not decoder_only  # decoder-only features add their own BOS / separator / end token
        src_len = [len(x) for x in tokenizer(sources, add_special_tokens=special)["input_ids"]]
        tgt_len = [len(x) for x in tokenizer(text_target=targets, add_special_tokens=special)["input_ids"]]
        long = {"_long_source": [n > data_args.max_source_length for n in src_len],
                "_long_target": [n > max_target - (not special) for n in tgt_len]}
        if decoder_only:
            return {**causal_lm_features(tokenizer, sources, targets, data_args, max_target, with_target=train), **long}
        enc = tokenizer(sources, max_length=data_args.max_source_length, padding=padding, truncation=True)
        labels = tokenizer(text_target=targets, max_length=max_target, padding=padding, truncation=True)["input_ids"]
        if padding and data_args.ignore_pad_token_for_loss:
            labels = [[t if t != tokenizer.pad_token_id else -100 for t in lab] for lab in labels]
        enc["labels"] = labels
        return {**enc, **long}

    splits = {}
    for stage, split, n, needed, max_target in (
            ("train", "train", data_args.max_train_samples, training_args.do_train, data_args.max_target_length),
            ("eval", "validation", data_args.max_eval_samples, training_args.do_eval, data_args.val_max_target_length),
            ("predict", "test", data_args.max_predict_samples, training_args.do_predict,
             data_args.val_max_target_length)):
        splits[stage] = prepare_split(raw, split, n, needed, task, data_args, training_args,
                                      lambda ex, m=max_target, t=stage == "train": tokenize(ex, m, t), max_target)

    collator = DataCollatorForSeq2Seq(
        tokenizer, model=model,
        label_pad_token_id=-100 if data_args.ignore_pad_token_for_loss else tokenizer.pad_token_id,
        pad_to_multiple_of=8 if training_args.fp16 else None)

    def compute_metrics(eval_preds):
        preds, labels = eval_preds
        preds = preds[0] if isinstance(preds, tuple) else preds
        preds = np.where(preds != -100, preds, tokenizer.pad_token_id)
        labels = np.where(labels != -100, labels, tokenizer.pad_token_id)
        result = task.score(decode(tokenizer, preds), decode(tokenizer, labels))
        result["gen_len"] = M.gen_len(preds, tokenizer.pad_token_id)
        return result

    trainer = EarlyExitSeq2SeqTrainer(
        model=model, args=training_args, train_dataset=splits["train"][1], eval_dataset=splits["eval"][1],
        processing_class=tokenizer, data_collator=collator,
        compute_metrics=compute_metrics if training_args.predict_with_generate else None)
    # As in the HF examples: --generation_max_length / --generation_num_beams unless the task's own flags say
    # otherwise (--generation_config, a file or folder, is loaded by Seq2SeqTrainer into model.generation_config).
    gen_kwargs = {"max_length": training_args.generation_max_length or data_args.val_max_target_length,
                  "num_beams": data_args.num_beams or training_args.generation_num_beams}
    if decoder_only:  # a causal LM's max_length would count the prompt
        gen_kwargs = {"max_new_tokens": gen_kwargs.pop("max_length"), **gen_kwargs}
    trainer.eval_gen_kwargs = gen_kwargs

    def write_predictions(out):
        texts = decode(tokenizer, np.where(out.predictions != -100, out.predictions, tokenizer.pad_token_id))
        with open(os.path.join(training_args.output_dir, "generated_predictions.txt"), "w") as f:
            f.write("\n".join(t.replace("\n", " ") for t in texts))

    results = run_stages(trainer, training_args, data_args, last_checkpoint, splits["train"][1], splits["eval"][1],
                         splits["predict"][1], gen_kwargs, write_predictions)
    if task.after is not None and trainer.is_world_process_zero():
        task.after(trainer, data_args, {k: v[0] for k, v in splits.items()}, results)
    finish_distributed(trainer)
    return results


def decode(tokenizer, ids) -> list[str]:
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def apply_deploy_scenario(settings, training_args):
    """The evaluation batch size left open on the command line: 1 for --deploy_scenario (as published), else 8."""
    if training_args.per_device_eval_batch_size is None:
        training_args.per_device_eval_batch_size = 1 if settings["deploy_scenario"] else 8

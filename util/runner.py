"""The parts of an HF-style entry point that every task shares: arguments, data files, checkpoints, stages."""

import logging
import os
import sys

import datasets
import transformers
from transformers import HfArgumentParser, set_seed
from transformers.trainer_utils import get_last_checkpoint

from additional_args import AdditionalArguments, ModelArguments, TrainingArguments, alias_argv

logger = logging.getLogger(__name__)


def parse_args(data_cls, argv=None):
    """(model_args, data_args, training_args, additional_args) from the CLI or a single .json file."""
    parser = HfArgumentParser((ModelArguments, data_cls, TrainingArguments, AdditionalArguments))
    argv = alias_argv(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


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


def detect_last_checkpoint(training_args):
    """The checkpoint to resume from, or None; refuses to train into a non-empty folder by accident."""
    out = training_args.output_dir
    if not (os.path.isdir(out) and training_args.do_train) or training_args.overwrite_output_dir:
        return None
    last = get_last_checkpoint(out)
    if last is None and len(os.listdir(out)) > 0:
        raise ValueError(f"Output directory ({out}) already exists and is not empty. "
                         "Use --overwrite_output_dir to train into it anyway.")
    if last is not None and training_args.resume_from_checkpoint is None:
        logger.info(f"Checkpoint detected, resuming training at {last}. Change --output_dir or add "
                    "--overwrite_output_dir to train from scratch.")
    return last


def load_raw_datasets(data_args, model_args):
    if data_args.dataset_name is not None:
        return datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name,
                                     cache_dir=model_args.cache_dir, token=model_args.token)
    files = {}
    for split, f in (("train", data_args.train_file), ("validation", data_args.validation_file),
                     ("test", data_args.test_file)):
        if f is None:
            continue
        if not os.path.isfile(f):
            raise FileNotFoundError(f"--{split}_file {f} does not exist")
        files[split] = f
    exts = {f.rsplit(".", 1)[-1].replace("jsonl", "json") for f in files.values()}
    if len(exts) > 1:
        raise ValueError(f"Data files must share one format, got {sorted(exts)}")
    try:
        return datasets.load_dataset(exts.pop(), data_files=files, cache_dir=model_args.cache_dir)
    except datasets.exceptions.DatasetGenerationError as e:
        raise ValueError(f"Could not read {files}: {e.__cause__ or e}. All splits must have the same columns.") from e


def require_columns(dataset, columns, flag_hint=""):
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(f"Column(s) {missing} not found in the data; it has {dataset.column_names}. {flag_hint}")


def select_split(raw, split, max_samples, needed: bool):
    if not needed:
        return None
    if split not in raw:
        raise ValueError(f"This stage needs a '{split}' split: pass the matching --*_file or a dataset that has it.")
    ds = raw[split]
    return ds.select(range(min(max_samples, len(ds)))) if max_samples is not None else ds


def run_stages(trainer, training_args, data_args, last_checkpoint, train_ds, eval_ds, predict_ds,
               gen_kwargs, write_predictions):
    """Train / evaluate / predict as the HF examples do, saving *_results.json and the trainer state."""
    results = {}
    if training_args.do_train:
        ckpt = training_args.resume_from_checkpoint or last_checkpoint
        train_result = trainer.train(resume_from_checkpoint=ckpt)
        trainer.save_model()
        metrics = dict(train_result.metrics, train_samples=len(train_ds))
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results.update(metrics)
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

#!/usr/bin/env python
"""Fine-tune and evaluate early-exit seq2seq models for summarization (HF example conventions).

    python run_summarization.py --model_name_or_path t5-large --dataset_name samsum \
        --source_prefix "summarize: " --do_train --do_eval --predict_with_generate --output_dir out \
        --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna \
        --shallow_exit_layer 6 --distill_layer_alpha 0.5

Arguments can also come from a single .json file.
"""

import logging
import os

import numpy as np
from transformers import DataCollatorForSeq2Seq

from additional_args import SummarizationDataArguments
from models import freeze_all_but_meta_head, load_model_and_tokenizer
from trainers import EarlyExitSeq2SeqTrainer
from util import metrics as M
from util import runner

logger = logging.getLogger(__name__)

# (text column, summary column) of the hub datasets the published recipes use.
summarization_name_mapping = {
    "cnn_dailymail": ("article", "highlights"),
    "samsum": ("dialogue", "summary"),
    "xsum": ("document", "summary"),
    "multi_news": ("document", "summary"),
    "big_patent": ("description", "abstract"),
}


TEXT_NAMES = ("dialogue", "article", "document", "description", "text", "source")
SUMMARY_NAMES = ("summary", "highlights", "abstract", "target")


def _guess(columns, names, position):
    """A column by its usual name, else by position as the HF example does (an 'id' column is never text)."""
    for n in names:
        if n in columns:
            return n
    rest = [c for c in columns if c != "id"]
    return rest[position] if position < len(rest) else columns[min(position, len(columns) - 1)]


def lead_sentence(text: str) -> str:
    """First sentence of a source: the first line of a dialogue, else the first punkt sentence."""
    first_line = text.strip().split("\n", 1)[0]
    sents = M.sent_tokenize(first_line)
    return sents[0] if sents else first_line


def main(argv=None):
    model_args, data_args, training_args, add_args = runner.parse_args(SummarizationDataArguments, argv)
    runner.setup(training_args)
    M.ensure_punkt()
    last_checkpoint = runner.detect_last_checkpoint(training_args)

    raw = runner.load_raw_datasets(data_args, model_args)
    model, tokenizer, settings = load_model_and_tokenizer(
        model_args, add_args, max_answer_length=data_args.max_target_length, training=training_args.do_train)
    if settings["train_meta_cm_head"]:
        freeze_all_but_meta_head(model)
        model.config.meta_head_trained = True  # lets decoding use the 'meta' confidence
    if settings["deploy_scenario"] and training_args.per_device_eval_batch_size != 1:
        logger.warning("--deploy_scenario measures latency at batch size 1: setting per_device_eval_batch_size=1")
        training_args.per_device_eval_batch_size = 1

    cols = next(iter(raw.values())).column_names
    mapped = summarization_name_mapping.get(data_args.dataset_name)
    text_col = data_args.text_column or (mapped or (None, None))[0] or _guess(cols, TEXT_NAMES, 0)
    summary_col = data_args.summary_column or (mapped or (None, None))[1] or _guess(cols, SUMMARY_NAMES, 1)
    prefix = data_args.source_prefix or ""
    if prefix == "" and getattr(model.config, "model_type", None) == "t5" and "t5-" in model_args.model_name_or_path:
        logger.warning("Hub T5 checkpoints expect --source_prefix 'summarize: '")

    def clean(ds, split):
        runner.require_columns(ds, [text_col, summary_col], "Set --text_column/--summary_column.")
        kept = ds.filter(lambda ex: bool(ex[text_col] and str(ex[text_col]).strip()
                                         and ex[summary_col] and str(ex[summary_col]).strip()))
        if len(kept) < len(ds):
            logger.warning(f"{split}: dropped {len(ds) - len(kept)} examples with an empty text or summary")
        if len(kept) == 0:
            raise ValueError(f"{split}: every example has an empty '{text_col}' or '{summary_col}'")
        return kept

    def preprocess(examples, max_target):
        inputs = [prefix + t for t in examples[text_col]]
        padding = "max_length" if data_args.pad_to_max_length else False
        enc = tokenizer(inputs, max_length=data_args.max_source_length, padding=padding, truncation=True)
        labels = tokenizer(text_target=examples[summary_col], max_length=max_target, padding=padding,
                           truncation=True)["input_ids"]
        if padding and data_args.ignore_pad_token_for_loss:
            labels = [[t if t != tokenizer.pad_token_id else -100 for t in lab] for lab in labels]
        enc["labels"] = labels
        return enc

    def prepare(split, max_samples, needed, max_target):
        ds = runner.select_split(raw, split, max_samples, needed)
        if ds is None:
            return None, None
        ds = clean(ds, split)
        with training_args.main_process_first(desc=f"{split} tokenization"):
            tok = ds.map(lambda ex: preprocess(ex, max_target), batched=True, remove_columns=ds.column_names,
                         num_proc=data_args.preprocessing_num_workers,
                         load_from_cache_file=not data_args.overwrite_cache)
        return ds, tok

    _, train_ds = prepare("train", data_args.max_train_samples, training_args.do_train, data_args.max_target_length)
    eval_raw, eval_ds = prepare("validation", data_args.max_eval_samples, training_args.do_eval,
                                data_args.val_max_target_length)
    predict_raw, predict_ds = prepare("test", data_args.max_predict_samples, training_args.do_predict,
                                      data_args.val_max_target_length)

    collator = DataCollatorForSeq2Seq(
        tokenizer, model=model, label_pad_token_id=-100 if data_args.ignore_pad_token_for_loss else tokenizer.pad_token_id,
        pad_to_multiple_of=8 if training_args.fp16 else None)

    def compute_metrics(eval_preds):
        preds, labels = eval_preds
        preds = preds[0] if isinstance(preds, tuple) else preds
        preds = np.where(preds != -100, preds, tokenizer.pad_token_id)
        labels = np.where(labels != -100, labels, tokenizer.pad_token_id)
        decoded_preds = tokenizer.batch_decode(preds, skip_special_tokens=True)
        decoded_labels = tokenizer.batch_decode(labels, skip_special_tokens=True)
        result = M.rouge(decoded_preds, decoded_labels)
        result["gen_len"] = M.gen_len(preds, tokenizer.pad_token_id)
        return result

    trainer = EarlyExitSeq2SeqTrainer(
        model=model, args=training_args, train_dataset=train_ds, eval_dataset=eval_ds,
        processing_class=tokenizer, data_collator=collator,
        compute_metrics=compute_metrics if training_args.predict_with_generate else None)

    gen_kwargs = {"max_length": data_args.val_max_target_length,
                  "num_beams": data_args.num_beams or training_args.generation_num_beams}

    def write_predictions(out):
        preds = np.where(out.predictions != -100, out.predictions, tokenizer.pad_token_id)
        texts = [p.strip() for p in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        with open(os.path.join(training_args.output_dir, "generated_predictions.txt"), "w") as f:
            f.write("\n".join(t.replace("\n", " ") for t in texts))

    results = runner.run_stages(trainer, training_args, data_args, last_checkpoint, train_ds, eval_ds, predict_ds,
                                gen_kwargs, write_predictions)

    if data_args.lead_baseline and trainer.is_world_process_zero():
        for split, ds in (("eval", eval_raw), ("predict", predict_raw)):
            if ds is None:
                continue
            lead = M.rouge([lead_sentence(t) for t in ds[text_col]], list(ds[summary_col]))
            lead = {f"{split}_lead_{k}": v for k, v in lead.items()}
            trainer.log_metrics(f"{split}_lead", lead)
            results.update(lead)
            trainer.save_metrics(split, {k: v for k, v in results.items() if k.startswith(f"{split}_")})
    return results


if __name__ == "__main__":
    main()

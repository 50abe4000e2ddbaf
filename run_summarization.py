#!/usr/bin/env python
"""Fine-tune and evaluate early-exit seq2seq models for summarization (HF example conventions).

    python run_summarization.py --model_name_or_path t5-large --dataset_name samsum \
        --source_prefix "summarize: " --do_train --do_eval --predict_with_generate --output_dir out \
        --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna \
        --shallow_exit_layer 6 --distill_layer_alpha 0.5

Arguments can also come from a single .json file.
"""

import task_flow
from additional_args import SummarizationDataArguments
from util import checks
from util import metrics as M

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


def columns(data_args, names):
    """(text column, summary column): the flags, else the hub mapping, else the usual names."""
    mapped = summarization_name_mapping.get(data_args.dataset_name, (None, None))
    return [data_args.text_column or mapped[0] or _guess(names, TEXT_NAMES, 0),
            data_args.summary_column or mapped[1] or _guess(names, SUMMARY_NAMES, 1)]


def fields(data_args, ds):
    text, summary = columns(data_args, ds.column_names)
    return lambda ex: {f"source {text!r}": ex[text], f"target {summary!r}": ex[summary]}


def pairs(examples, data_args):
    text, summary = columns(data_args, list(examples))
    return [t or "" for t in examples[text]], [x or "" for x in examples[summary]]


def lead_baseline(trainer, data_args, raw, results):
    if not data_args.lead_baseline:
        return
    for split in ("eval", "predict"):
        ds = raw.get(split)
        if ds is None:
            continue
        text, summary = columns(data_args, ds.column_names)
        lead = M.rouge([lead_sentence(t) for t in ds[text]], list(ds[summary]))
        lead = {f"{split}_lead_{k}": v for k, v in lead.items()}
        trainer.log_metrics(f"{split}_lead", lead)
        results.update(lead)
        trainer.save_metrics(split, {k: v for k, v in results.items() if k.startswith(f"{split}_")})


TASK = task_flow.TextTask(SummarizationDataArguments, columns, fields, pairs, M.rouge, after=lead_baseline)


def main(argv=None):
    return task_flow.run_text_task(TASK, argv)


if __name__ == "__main__":
    checks.run_cli(main, "run_summarization.py")

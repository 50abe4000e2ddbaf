#!/usr/bin/env python
"""Generative question answering (SQuAD v1.1 / v2) with early-exit seq2seq models.

    python run_question_answering.py --model_name_or_path t5-large --dataset_name squad \
        --do_train --do_eval --predict_with_generate --output_dir out --max_seq_length 512 \
        --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna \
        --shallow_exit_layer 6 --distill_layer_alpha 0.5

Inputs are "question: ... context: ..." windows: a long context is split into windows of
--max_seq_length tokens overlapping by --doc_stride. Each window generates an answer; the example's
answer is the window answer with the highest mean log-likelihood under the model. With
--version_2_with_negative a window may answer nothing (an empty target) and the example answers
nothing when even its most answer-minded window prefers the empty answer by more than
--null_score_diff_threshold. Exact match and F1 use the official SQuAD normalisation, offline.
Data files: the official SQuAD JSON ({"data": [{"paragraphs": ...}]}) or flat rows of the HF squad
dataset (id, context, question, answers {text, answer_start}).
"""

import json
import logging
import os

import datasets
import numpy as np
import torch
from transformers import DataCollatorForSeq2Seq

import task_flow
from additional_args import QADataArguments
from models import load_model_and_tokenizer
from trainers import EarlyExitSeq2SeqTrainer, unwrap_peft
from util import checks
from util import metrics as M
from util.data_gen import squad_to_records

logger = logging.getLogger(__name__)


def load_qa_data(data_args, model_args):
    """Official SQuAD JSON files are flattened to HF squad rows; anything else loads as usual."""
    files = {s: f for s, f in (("train", data_args.train_file), ("validation", data_args.validation_file),
                               ("test", data_args.test_file)) if f}
    if data_args.dataset_name or not all(f.endswith(".json") for f in files.values()):
        return task_flow.load_raw_datasets(data_args, model_args)
    out = {}
    for split, f in files.items():
        obj = checks.read_json_document(f, f"--{split}_file")
        if not (isinstance(obj, dict) and isinstance(obj.get("data"), list)):
            return task_flow.load_raw_datasets(data_args, model_args)
        try:
            out[split] = datasets.Dataset.from_list(squad_to_records(obj))
        except (KeyError, TypeError, AttributeError) as e:
            raise checks.InputError(f"--{split}_file {f}: not the official SQuAD layout (data -> paragraphs -> "
                                    f"context, qas -> id, question, answers): {type(e).__name__} {e}") from None
        if len(out[split]) == 0:
            raise checks.InputError(f"--{split}_file {f} holds no questions")
    return datasets.DatasetDict(out)


def answer_problem(answers, context, training: bool) -> str:
    """'' or why an example's answers cannot train a window; answers of the wrong shape raise."""
    if not (isinstance(answers, dict) and isinstance(answers.get("text"), list)
            and isinstance(answers.get("answer_start"), list) and len(answers["text"]) == len(answers["answer_start"])):
        raise checks.InputError(f"'answers' must be {{'text': [...], 'answer_start': [...]}} of equal length, got "
                                f"{str(answers)[:60]}")
    if training:  # the window that holds the answer is found from answer_start; evaluation scores the texts
        for text, start in zip(answers["text"], answers["answer_start"]):
            if not isinstance(start, int) or context[start:start + len(text)] != text:
                return "an answer_start that does not point at its answer text in the context"
    return ""


def windows(tokenizer, examples, d, with_targets):
    """Tokenized windows of every example; targets are the answer inside the window, or '' where allowed."""
    q, c, a = d.question_column, d.context_column, d.answer_column
    enc = tokenizer([f"question: {x.lstrip()}" for x in examples[q]],
                    [f"context: {x}" for x in examples[c]],
                    truncation="only_second", max_length=d.max_seq_length, stride=d.doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding="max_length" if d.pad_to_max_length else False)
    shift = len("context: ")
    keep, targets, example_idx = [], [], []
    for i, ex in enumerate(enc.pop("overflow_to_sample_mapping")):
        seq_ids = enc.sequence_ids(i)
        ctx = [o for o, s in zip(enc["offset_mapping"][i], seq_ids) if s == 1]
        lo, hi = ctx[0][0] - shift, ctx[-1][1] - shift  # the window's span of the original context
        answers = examples[a][ex]
        target = None
        if not answers["text"]:
            target = "" if d.version_2_with_negative else None
        else:
            for text, start in zip(answers["text"], answers["answer_start"]):
                if lo <= start and start + len(text) <= hi:
                    target = text
                    break
            if target is None and d.version_2_with_negative:
                target = ""
        if with_targets and target is None:
            continue  # v1 training: a window without the answer teaches nothing
        keep.append(i)
        targets.append(target or "")
        example_idx.append(ex)
    out = {k: [enc[k][i] for i in keep] for k in ("input_ids", "attention_mask")}
    out["example_id"] = [examples["id"][e] for e in example_idx]
    if with_targets:
        out["labels"] = tokenizer(text_target=targets, max_length=d.max_answer_length, truncation=True)["input_ids"]
    return out


@torch.no_grad()
def mean_logprob(model, tokenizer, features, texts, batch_size=32):
    """Mean log-likelihood (answer tokens + EOS) of each window's answer under the model."""
    model = unwrap_peft(model)
    device = next(model.parameters()).device
    scores = []
    for s in range(0, len(texts), batch_size):
        f = features[s:s + batch_size]
        enc = tokenizer.pad({"input_ids": f["input_ids"], "attention_mask": f["attention_mask"]}, return_tensors="pt")
        lab = tokenizer(text_target=texts[s:s + batch_size], padding=True, return_tensors="pt")["input_ids"]
        lab[lab == tokenizer.pad_token_id] = -100
        logits = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                       labels=lab.to(device)).logits.float()
        lp = torch.log_softmax(logits, -1).gather(-1, lab.clamp_min(0).to(device)[..., None])[..., 0]
        mask = lab.to(device) != -100
        scores += ((lp * mask).sum(1) / mask.sum(1)).tolist()
    return scores


def choose_answers(examples, features, texts, answer_scores, null_scores, d):
    """One answer per example across its windows (see the module docstring)."""
    by_example = {}
    for i, ex_id in enumerate(features["example_id"]):
        by_example.setdefault(ex_id, []).append(i)
    preds = {}
    for ex_id in examples["id"]:
        idx = by_example.get(ex_id, [])
        answered = [i for i in idx if texts[i]]
        best = max(answered, key=lambda i: answer_scores[i]) if answered else None
        if best is None:
            preds[ex_id] = ""
        elif (d.version_2_with_negative
              and min(null_scores[i] for i in idx) > answer_scores[best] + d.null_score_diff_threshold):
            preds[ex_id] = ""
        else:
            preds[ex_id] = texts[best]
    return preds


def main(argv=None):
    model_args, d, training_args, add_args = task_flow.parse_args(QADataArguments, argv)
    task_flow.setup(training_args)
    last_checkpoint = task_flow.detect_last_checkpoint(training_args)
    raw = load_qa_data(d, model_args)
    for ds in raw.values():
        task_flow.require_columns(ds, ["id", d.question_column, d.context_column, d.answer_column],
                               "Set --question_column/--context_column/--answer_column.")
    model, tokenizer, settings = load_model_and_tokenizer(model_args, add_args, max_answer_length=d.max_answer_length,
                                                          training=training_args.do_train)
    if not tokenizer.is_fast:
        raise checks.InputError("Context windows need a fast tokenizer (offset mapping); load one with "
                                "--use_fast_tokenizer")
    task_flow.apply_deploy_scenario(settings, training_args)
    training_args.predict_with_generate = True  # answers are generated

    def prepare(split, n, needed, with_targets):
        ds = task_flow.select_split(raw, split, n, needed)
        if ds is None:
            return None, None
        q, c, a = d.question_column, d.context_column, d.answer_column
        ds = checks.usable_rows(ds, split, lambda ex: checks.text_problem({f"question {q!r}": ex[q],
                                                                           f"context {c!r}": ex[c]})
                                or answer_problem(ex[a], ex[c], with_targets), what="question or context")
        with training_args.main_process_first(desc=f"{split} windows"):
            feats = ds.map(lambda ex: windows(tokenizer, ex, d, with_targets), batched=True,
                           remove_columns=ds.column_names, num_proc=d.preprocessing_num_workers,
                           load_from_cache_file=not d.overwrite_cache)
        return ds, feats

    train_raw, train_ds = prepare("train", d.max_train_samples, training_args.do_train, True)
    eval_raw, eval_feats = prepare("validation", d.max_eval_samples, training_args.do_eval, False)
    test_raw, test_feats = prepare("test", d.max_predict_samples, training_args.do_predict, False)
    if train_ds is not None:
        train_ds = train_ds.remove_columns("example_id")
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    # eval_dataset only tells the Trainer there is one: its evaluations during training are score() below
    trainer = EarlyExitSeq2SeqTrainer(model=model, args=training_args, train_dataset=train_ds,
                                      eval_dataset=eval_feats, processing_class=tokenizer, data_collator=collator)
    gen_kwargs = {"max_length": training_args.generation_max_length or d.val_max_target_length,
                  "num_beams": d.num_beams or training_args.generation_num_beams}

    def score(prefix, examples, feats, gen_kwargs):
        """Answers (one per question across its windows) and their EM/F1 with the decoding record."""
        out = trainer.predict(feats.remove_columns("example_id"), metric_key_prefix=prefix, **gen_kwargs)
        texts = task_flow.decode(tokenizer, np.where(out.predictions != -100, out.predictions, tokenizer.pad_token_id))
        scores = mean_logprob(trainer.model, tokenizer, feats, texts)
        nulls = mean_logprob(trainer.model, tokenizer, feats, [""] * len(texts)) \
            if d.version_2_with_negative else [float("-inf")] * len(texts)  # "" = the empty answer, EOS alone
        preds = choose_answers(examples, feats, texts, scores, nulls, d)
        refs = {ex["id"]: ex[d.answer_column]["text"] for ex in examples}
        metrics = dict(out.metrics, **{f"{prefix}_{k}": v for k, v in
                                       M.squad(preds, refs, "v2" if d.version_2_with_negative else "v1").items()})
        metrics[f"{prefix}_samples"], metrics[f"{prefix}_windows"] = len(examples), len(feats)
        return preds, metrics

    trainer.eval_gen_kwargs = gen_kwargs
    if eval_feats is not None:
        trainer.task_evaluate = lambda prefix, kw: score(prefix, eval_raw, eval_feats, kw)[1]
    results = task_flow.train_stage(trainer, training_args, last_checkpoint, train_ds) if training_args.do_train else {}

    for prefix, examples, feats in (("eval", eval_raw, eval_feats), ("predict", test_raw, test_feats)):
        if feats is None:
            continue
        preds, metrics = score(prefix, examples, feats, gen_kwargs)
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        if trainer.is_world_process_zero():
            with open(os.path.join(training_args.output_dir, f"{prefix}_predictions.json"), "w") as f:
                json.dump(preds, f, indent=1)
        results.update(metrics)
    task_flow.finish_distributed(trainer)
    return results


if __name__ == "__main__":
    checks.run_cli(main, "run_question_answering.py")

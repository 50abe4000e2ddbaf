"""Seq2SeqTrainer for early-exit models, shared by the three tasks."""

import functools
import json
import os
import time
from contextlib import contextmanager

import torch
import torch.distributed as dist
from transformers import Seq2SeqTrainer
from transformers.trainer_utils import has_length

from models.stats import DecodeStats


def unwrap_peft(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data_rows(inputs: dict, real: int) -> dict:
    """The first `real` rows of a collated batch, without the columns that only the dropped rows needed (so they
    are the tensors one process collates for those rows: padding on the left or right, of input and labels)."""
    out = {k: v[:real] if torch.is_tensor(v) else v for k, v in inputs.items()}
    mask = out.get("attention_mask")
    if mask is not None:
        used = mask.any(0).nonzero().flatten()
        lo, hi = int(used.min()), int(used.max()) + 1
        for k in ("input_ids", "attention_mask", "token_type_ids"):
            if k in out and out[k].shape == mask.shape:
                out[k] = out[k][:, lo:hi]
    labels = out.get("labels")
    if labels is not None and labels.dim() == 2:
        width = int((labels != -100).any(0).nonzero().max()) + 1 if (labels != -100).any() else labels.shape[1]
        for k in ("labels", "decoder_input_ids", "decoder_attention_mask"):
            if k in out and out[k].shape == labels.shape:
                out[k] = out[k][:, :width]
    return out


def _pad_rows(t, n: int):
    """t with rows of -100 appended up to n (rows the gather drops)."""
    if t is None or len(t) >= n:
        return t
    return torch.cat([t, torch.full((n - len(t), *t.shape[1:]), -100, dtype=t.dtype, device=t.device)])


class EarlyExitSeq2SeqTrainer(Seq2SeqTrainer):
    """Adds the decoding record to evaluation: wall time of whole generate() calls and the engine's counts,
    gathered from every process under torchrun / accelerate launch."""

    _eval_rows: int | None = None  # rows of the split being evaluated (None: unknown, no padding is dropped)
    _eval_step = _eval_batch = 0  # this rank's evaluation step; the batch's index in the gathered order

    def _save(self, output_dir=None, state_dict=None):
        super()._save(output_dir, state_dict)
        # A LoRA checkpoint is adapter + base name; keep the exit settings beside it so it reloads with its exits.
        model = unwrap_peft(self.model)
        if model is not self.model and self.args.should_save:
            model.config.save_pretrained(output_dir or self.args.output_dir)

    def training_step(self, model, inputs, num_items_in_batch=None):
        # LayerSkip's curriculum rotates with the optimizer step; global_step is restored on resume, so a resumed
        # run picks the same exits as an uninterrupted one.
        unwrap_peft(self.model).exit_train_step = self.state.global_step
        return super().training_step(model, inputs, num_items_in_batch)

    @contextmanager
    def _measured_generate(self, dataset=None):
        """Time every generate() call as a whole (sync only on GPU, once per call, never per operation) and keep
        each call's engine counts with the index of the batch it decoded, so that ranks' counts can be merged in
        the order of the predictions (see _gathered)."""
        model, base = self.model, unwrap_peft(self.model)
        record = {"time": 0.0, "calls": 0, "batches": []}
        if hasattr(base, "pop_exit_stats"):
            base.pop_exit_stats()
        self._eval_step, self._eval_batch = 0, 0
        sized = dataset is not None and not isinstance(dataset, (dict, str)) and has_length(dataset)
        self._eval_rows = len(dataset) if sized else None
        original = model.generate

        def timed(*args, **kwargs):
            _sync(self.args.device)
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            _sync(self.args.device)
            record["time"] += time.perf_counter() - t0
            record["calls"] += 1
            if hasattr(base, "pop_exit_stats"):
                record["batches"].append((self._eval_batch, base.pop_exit_stats()))
            return out

        model.generate = timed
        try:
            yield record
        finally:
            del model.generate
            self._eval_rows = None

    def _batch_rows(self, n: int) -> int:
        """How many of this evaluation batch's n rows are data. Under several processes accelerate deals the
        batches round-robin (batch g = step * world + rank) and fills the last round with the first rows again
        (even_batches), which gather_for_metrics drops: every position past the data's length in that order."""
        world, rank = self.args.world_size, self.args.process_index
        self._eval_batch = self._eval_step * world + rank
        self._eval_step += 1
        if world == 1 or self._eval_rows is None or not self.accelerator.even_batches:
            return n
        return max(0, min(n, self._eval_rows - self._eval_batch * n))

    def _gathered(self, record) -> dict:
        """Every rank's record merged (a collective: every rank calls it): counts summed, records and thresholds in
        the order of the batches (the predictions' order), the slowest rank's time and the sum of all."""
        parts = [(record["time"], record["calls"], record["batches"])]
        world = self.args.world_size
        if world > 1 and dist.is_available() and dist.is_initialized():
            parts = [None] * world
            dist.all_gather_object(parts, (record["time"], record["calls"], record["batches"]))
        batches = sorted((b for p in parts for b in p[2]), key=lambda b: b[0])  # stable: calls keep their order
        stats = None
        for _, st in batches:
            stats = stats or DecodeStats()
            stats.add(st)
        return {"time": max(p[0] for p in parts), "time_sum": sum(p[0] for p in parts),
                "calls": sum(p[1] for p in parts), "stats": stats, "processes": len(parts)}

    def _decoding_metrics(self, record, prefix):
        record = self._gathered(record)
        if not record["calls"]:
            return {}
        m = {f"{prefix}_generate_time": round(record["time"], 4), f"{prefix}_generate_calls": record["calls"]}
        if record["processes"] > 1:  # generate_time is the slowest process's (the job's wall time in generate())
            m[f"{prefix}_generate_time_sum"] = round(record["time_sum"], 4)
            m[f"{prefix}_processes"] = record["processes"]
        st = record["stats"]
        if st is not None and st.sequences:
            m.update({f"{prefix}_{k}": v for k, v in st.summary().items()})
            m[f"{prefix}_tokens_per_second"] = round(st.tokens / max(record["time"], 1e-9), 2)
            if st.thresholds:
                m[f"{prefix}_threshold_final"] = st.thresholds[-1]
            if self.args.should_save:
                os.makedirs(self.args.output_dir, exist_ok=True)
                with open(os.path.join(self.args.output_dir, f"{prefix}_decoding_record.json"), "w") as f:
                    json.dump({"summary": st.summary(), "threshold_trajectory": st.thresholds,
                               "tokens": [vars(r) for r in st.records]}, f)
        return m

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        # DataCollatorForSeq2Seq sets labels=None on label-free data, which Seq2SeqTrainer takes for labels.
        if "labels" in inputs and inputs["labels"] is None:
            inputs = {k: v for k, v in inputs.items() if k != "labels"}
        n = len(inputs["input_ids"])
        real = self._batch_rows(n)
        if real == n or prediction_loss_only or not self.args.predict_with_generate:
            return self._step(model, inputs, prediction_loss_only, ignore_keys, **gen_kwargs)
        # accelerate's padding rows are dropped when gathered: they are not decoded, so the counts and FREE's
        # adaptive threshold see every row once, and the data rows decode in the batch one process gives them.
        # The other ranks gather a loss (encoder-decoder) and predictions every step, so this rank returns them too.
        if real == 0:
            preds = torch.full((n, 1), -100, device=self.args.device)
            return self._loss_only(model, inputs), preds, inputs.get("labels")
        loss, preds, labels = self._step(model, _data_rows(inputs, real), False, ignore_keys, **gen_kwargs)
        return loss, _pad_rows(preds, n), _pad_rows(labels, n)

    def _loss_only(self, model, inputs):
        """The loss Seq2SeqTrainer.prediction_step computes beside generating (the decoder-only path has none).
        Not Trainer.prediction_step's: that one gathers token counts across ranks, a collective the others skip."""
        if "labels" not in inputs or not self._encoder_decoder():
            return None
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(**inputs)
        if self.label_smoother is not None:
            return self.label_smoother(outputs, inputs["labels"]).detach().mean()
        return (outputs["loss"] if isinstance(outputs, dict) else outputs[0]).detach().mean()

    def evaluation_loop(self, *args, **kwargs):
        # Seq2SeqTrainer.evaluate/predict gather with accelerator.gather ("we don't want to drop samples"), which
        # keeps accelerate's padding rows: 5 rows on 2 ranks at batch 2 were scored as 8 predictions (3 repeated).
        # gather_for_metrics drops them, as Trainer does; prediction_step leaves them undecoded.
        self.gather_function = functools.partial(self.accelerator.gather_for_metrics,
                                                 use_gather_object=self.args.eval_use_gather_object)
        return super().evaluation_loop(*args, **kwargs)

    def _encoder_decoder(self) -> bool:
        return getattr(unwrap_peft(self.model).config, "is_encoder_decoder", True)

    def _step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        if self._encoder_decoder() or prediction_loss_only or not self.args.predict_with_generate:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        # Decoder-only evaluation rows are prompts; the labels are the targets, so no loss, only the continuation.
        inputs = self._prepare_inputs(inputs)
        gen_kwargs = gen_kwargs or dict(getattr(self, "_gen_kwargs", {}))
        gen_kwargs = {k: v for k, v in gen_kwargs.items() if v is not None}
        out = self.model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], **gen_kwargs)
        new = out[:, inputs["input_ids"].shape[1]:]
        return None, new, inputs.get("labels")

    # The task's generation settings, and its own evaluation where its score is not a function of (predictions,
    # labels) alone (QA chooses one answer per question across its context windows): used when the Trainer
    # evaluates by itself during training (--eval_strategy steps|epoch), so that --metric_for_best_model scores a
    # checkpoint as the final evaluation does.
    eval_gen_kwargs: dict = {}
    task_evaluate = None  # (metric_key_prefix, gen_kwargs) -> metrics, their names prefixed

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval", **gen_kwargs):
        gen_kwargs = gen_kwargs or dict(self.eval_gen_kwargs)
        if self.task_evaluate is not None and eval_dataset is None:
            metrics = self.task_evaluate(metric_key_prefix, gen_kwargs)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics
        with self._measured_generate(eval_dataset if eval_dataset is not None else self.eval_dataset) as record:
            metrics = super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                                       **gen_kwargs)
        extra = self._decoding_metrics(record, metric_key_prefix)
        metrics.update(extra)
        if extra:
            self.log(extra)
        return metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test", **gen_kwargs):
        with self._measured_generate(test_dataset) as record:
            out = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                                  **gen_kwargs)
        out.metrics.update(self._decoding_metrics(record, metric_key_prefix))
        return out

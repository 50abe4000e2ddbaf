"""Seq2SeqTrainer for early-exit models, shared by the three tasks."""

import json
import os
import time
from contextlib import contextmanager

import torch
from transformers import Seq2SeqTrainer


def unwrap_peft(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EarlyExitSeq2SeqTrainer(Seq2SeqTrainer):
    """Adds the decoding record to evaluation: wall time of whole generate() calls and the engine's counts."""

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
    def _measured_generate(self):
        """Time every generate() call as a whole (sync only on GPU, once per call, never per operation)."""
        model, base = self.model, unwrap_peft(self.model)
        record = {"time": 0.0, "calls": 0}
        if hasattr(base, "pop_exit_stats"):
            base.pop_exit_stats()
        original = model.generate

        def timed(*args, **kwargs):
            _sync(self.args.device)
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            _sync(self.args.device)
            record["time"] += time.perf_counter() - t0
            record["calls"] += 1
            return out

        model.generate = timed
        try:
            yield record
        finally:
            del model.generate
        record["stats"] = base.pop_exit_stats() if hasattr(base, "pop_exit_stats") else None

    def _decoding_metrics(self, record, prefix):
        if not record["calls"]:
            return {}
        m = {f"{prefix}_generate_time": round(record["time"], 4), f"{prefix}_generate_calls": record["calls"]}
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
        if getattr(unwrap_peft(self.model).config, "is_encoder_decoder", True) or prediction_loss_only \
                or not self.args.predict_with_generate:
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
        with self._measured_generate() as record:
            metrics = super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                                       **gen_kwargs)
        extra = self._decoding_metrics(record, metric_key_prefix)
        metrics.update(extra)
        if extra:
            self.log(extra)
        return metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test", **gen_kwargs):
        with self._measured_generate() as record:
            out = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                                  **gen_kwargs)
        out.metrics.update(self._decoding_metrics(record, metric_key_prefix))
        return out

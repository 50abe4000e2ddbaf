"""Seq2SeqTrainer for early-exit models, shared by the three tasks."""

from transformers import Seq2SeqTrainer


def unwrap_peft(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


class EarlyExitSeq2SeqTrainer(Seq2SeqTrainer):
    def _save(self, output_dir=None, state_dict=None):
        super()._save(output_dir, state_dict)
        # A LoRA checkpoint is adapter + base name; keep the exit settings beside it so it reloads with its exits.
        model = unwrap_peft(self.model)
        if model is not self.model and self.args.should_save:
            model.config.save_pretrained(output_dir or self.args.output_dir)

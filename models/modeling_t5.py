"""T5 with early-exit training losses.

The model is HF's T5ForConditionalGeneration with the same parameter names, so plain T5 checkpoints
and checkpoints fine-tuned with the published code load as they are. It adds only what exits need:
the per-layer exit losses, an optional layer transformation (KD only) and the meta confidence head.
"""

import torch
from torch import nn
from transformers import T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models.deploying_t5 import T5Adapter
from models.engine import EarlyExitGenerationMixin
from util import losses


class MetaHead(nn.Sequential):
    """Meta confidence head: P(this exit's argmax equals the final layer's). One class for training and decoding."""

    def __init__(self, d_model: int):
        super().__init__(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, 2))


def wants_meta_head(config) -> bool:
    return bool(getattr(config, "train_meta_cm_head", False)) or "meta" in (
        getattr(config, "exit_conf_type", None),
        getattr(config, "shallow2deep_conf_type", None),
    )


class EffT5ForConditionalGeneration(EarlyExitGenerationMixin, T5ForConditionalGeneration):
    adapter_cls = T5Adapter

    def __init__(self, config):
        super().__init__(config)
        if getattr(config, "do_layer_transformation", False):
            self.layer_transformation = nn.Linear(config.d_model, config.d_model)
        if wants_meta_head(config):
            self.cm_head = MetaHead(config.d_model)
        self._init_exit_modules()

    def _init_exit_modules(self):
        # Identity start: the KD term begins as plain hidden-state matching.
        if hasattr(self, "layer_transformation"):
            with torch.no_grad():
                self.layer_transformation.weight.copy_(torch.eye(self.config.d_model))
                self.layer_transformation.bias.zero_()

    @property
    def num_decoder_layers(self) -> int:
        return self.config.num_decoder_layers

    def exit_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of a normalised decoder hidden state through the shared LM head."""
        if self.config.scale_decoder_outputs:
            h = h * (self.model_dim**-0.5)
        return self.lm_head(h)

    def exit_hidden_states(self, decoder_hidden_states) -> list[torch.Tensor]:
        """H[1..L]: every layer's output through the shared final norm (+ dropout), as the last layer gets."""
        norm, drop = self.decoder.final_layer_norm, self.decoder.dropout
        return [drop(norm(h)) for h in decoder_hidden_states[1:-1]] + [decoder_hidden_states[-1]]

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, cache=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None,
                use_cache=None, **kwargs):
        # Named like T5's forward: the Trainer keeps only dataset columns that the signature names.
        kwargs.update(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                      decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs, cache=cache,
                      inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache)
        cfg = self.config
        loss_fn = getattr(cfg, "intermediate_loss_fn", None)
        meta = getattr(cfg, "train_meta_cm_head", False)
        if not self.training or labels is None or not (loss_fn or meta):
            return super().forward(labels=labels, **kwargs)
        kwargs["output_hidden_states"] = True
        if meta:
            with torch.no_grad():
                out = super().forward(labels=labels, **kwargs)
        else:
            out = super().forward(labels=labels, **kwargs)
        hidden = self.exit_hidden_states(out.decoder_hidden_states)
        S = getattr(cfg, "shallow_exit_layer", None)
        if meta:
            layers = [S] if S else range(1, len(hidden))
            out.loss = losses.meta_head_loss(hidden, self.exit_logits, self.cm_head, labels, layers)
        else:
            out.loss = losses.intermediate_loss(
                loss_fn, hidden, self.exit_logits, labels, shallow_exit_layer=S,
                alpha=getattr(cfg, "distill_layer_alpha", None),
                transform=getattr(self, "layer_transformation", None),
            )
        return out

    def generate(self, *args, **kwargs):
        if args:
            kwargs["input_ids"], args = args[0], args[1:]
        # transformers 5 sizes generate()'s cache from the *encoder* depth (ENVIRONMENT.md section 1),
        # which breaks T5 with num_decoder_layers != num_layers; a config-less cache grows per layer.
        if kwargs.get("cache") is None and kwargs.get("past_key_values") is None:
            kwargs["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
        return super().generate(*args, **kwargs)

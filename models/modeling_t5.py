"""T5 (and T5 v1.1 / Flan-T5), mT5, umT5 and LongT5 with early-exit training losses.

The models are HF's T5ForConditionalGeneration / LongT5ForConditionalGeneration with the same parameter
names, so plain checkpoints and checkpoints fine-tuned with the published code load as they are. What
exits need (losses, layer transformation, meta head) comes from models/modeling_common.py; this file
only says how a T5 decoder state becomes exit logits. LongT5's decoder is T5's (same block call, same
relative-position self-attention; only the encoder attention differs), and so is mT5's (T5 v1.1 with a
larger vocabulary), so all share the code and the T5 adapter. T5 v1.1 / Flan-T5 / mT5 differ inside HF's
modules (gated-GELU feed-forward) and at the head: it is untied and unscaled (no d_model**-0.5), which
`scale_decoder_outputs` says for T5 and which mT5 never does. umT5 is mT5 with a relative-position bias in every
decoder layer instead of one shared: the exits are the same, the adapter keeps one bias table per layer.
"""

from transformers import (LongT5ForConditionalGeneration, MT5ForConditionalGeneration, T5ForConditionalGeneration,
                          UMT5ForConditionalGeneration)
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models.deploying_t5 import T5Adapter
from models.modeling_common import EncoderDecoderExitMixin, MetaHead, wants_meta_head  # noqa: F401 (re-exported)


class _T5Exits(EncoderDecoderExitMixin):
    adapter_cls = T5Adapter

    def exit_norm(self, h):
        return self.decoder.dropout(self.decoder.final_layer_norm(h))

    def exit_logits(self, h):
        if getattr(self.config, "scale_decoder_outputs", False):  # mT5's config has no such setting: never scaled
            h = h * (self.model_dim**-0.5)
        return self.lm_head(h)

    def generate(self, *args, **kwargs):
        if args:
            kwargs["input_ids"], args = args[0], args[1:]
        # transformers 5 sizes generate()'s cache from the *encoder* depth,
        # which breaks T5 with num_decoder_layers != num_layers; a config-less cache grows per layer.
        if kwargs.get("cache") is None and kwargs.get("past_key_values") is None:
            kwargs["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
        return super().generate(*args, **kwargs)


class EffT5ForConditionalGeneration(_T5Exits, T5ForConditionalGeneration):
    pass


class EffLongT5ForConditionalGeneration(_T5Exits, LongT5ForConditionalGeneration):
    pass


class EffMT5ForConditionalGeneration(_T5Exits, MT5ForConditionalGeneration):
    pass


class EffUMT5ForConditionalGeneration(_T5Exits, UMT5ForConditionalGeneration):
    pass

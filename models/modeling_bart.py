"""BART-family encoder-decoders with early-exit training losses: BART, mBART, Marian and Pegasus.

HF's classes with the same parameter names (plain checkpoints load as they are) plus the shared exit machinery of
models/modeling_common.py. What the family changes: BART and Marian decoder layers are post-LN (each ends in its
own LayerNorm), so an exit needs no shared final norm; mBART and Pegasus are pre-LN and end in a decoder
`layer_norm`, which every exit goes through; the LM head adds `final_logits_bias`. Positions and embedding
scales differ only at the embedding, which the adapter (deploying_bart.BartAdapter) reads from HF's modules.
"""

from transformers import (BartForConditionalGeneration, MarianMTModel, MBartForConditionalGeneration,
                          PegasusForConditionalGeneration)

from models.deploying_bart import BartAdapter
from models.modeling_common import EncoderDecoderExitMixin


class BartExitMixin(EncoderDecoderExitMixin):
    adapter_cls = BartAdapter

    def exit_norm(self, h):
        norm = getattr(self.get_decoder(), "layer_norm", None)
        return norm(h) if norm is not None else h

    def exit_logits(self, h):
        return self.lm_head(h) + self.final_logits_bias.to(h.device)


class EffBartForConditionalGeneration(BartExitMixin, BartForConditionalGeneration):
    pass


class EffMBartForConditionalGeneration(BartExitMixin, MBartForConditionalGeneration):
    pass


class EffMarianMTModel(BartExitMixin, MarianMTModel):
    pass


class EffPegasusForConditionalGeneration(BartExitMixin, PegasusForConditionalGeneration):
    pass

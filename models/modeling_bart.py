"""BART with early-exit training losses.

HF's BartForConditionalGeneration with the same parameter names (plain checkpoints load as they are) plus
the shared exit machinery of models/modeling_common.py. What BART changes: its decoder layers are post-LN
(each ends in its own LayerNorm), so an exit needs no shared final norm (mBART-style decoders with a
final `layer_norm` get it), and the tied LM head adds `final_logits_bias`.
"""

from transformers import BartForConditionalGeneration

from models.deploying_bart import BartAdapter
from models.modeling_common import EncoderDecoderExitMixin


class EffBartForConditionalGeneration(EncoderDecoderExitMixin, BartForConditionalGeneration):
    adapter_cls = BartAdapter

    def exit_norm(self, h):
        norm = getattr(self.get_decoder(), "layer_norm", None)
        return norm(h) if norm is not None else h

    def exit_logits(self, h):
        return self.lm_head(h) + self.final_logits_bias.to(h.device)

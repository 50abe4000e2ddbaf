"""BART with early-exit training losses.

HF's BartForConditionalGeneration with the same parameter names (plain checkpoints load as they are) plus
the shared exit machinery of models/modeling_common.py. What BART changes: its decoder layers are post-LN
(each ends in its own LayerNorm), so an exit needs no shared final norm (mBART-style decoders with a
final `layer_norm` get it), and the tied LM head adds `final_logits_bias`.
"""

from transformers import BartForConditionalGeneration

from models.deploying_bart import BartAdapter
from models.modeling_common import EarlyExitModelMixin


class EffBartForConditionalGeneration(EarlyExitModelMixin, BartForConditionalGeneration):
    adapter_cls = BartAdapter

    def exit_norm(self, h):
        norm = getattr(self.get_decoder(), "layer_norm", None)
        return norm(h) if norm is not None else h

    def exit_logits(self, h):
        return self.lm_head(h) + self.final_logits_bias.to(h.device)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, cache=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None,
                use_cache=None, **kwargs):
        # Named like BART's forward: the Trainer keeps only dataset columns that the signature names.
        return self.exit_forward(
            labels=labels, input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs, cache=cache,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache, **kwargs)

"""LLaMA-family causal LM with early-exit training losses.

HF's LlamaForCausalLM with the same parameter names plus the shared exit machinery of
models/modeling_common.py. What LLaMA changes: the shared final norm is the model's RMSNorm, the LM head
is untied and unscaled, and (decoder-only) the state at position t predicts label t+1, which the mixin
handles for every causal LM.
"""

from transformers import LlamaForCausalLM

from models.deploying_llama import LlamaAdapter
from models.modeling_common import EarlyExitModelMixin


class EffLlamaForCausalLM(EarlyExitModelMixin, LlamaForCausalLM):
    adapter_cls = LlamaAdapter

    def exit_norm(self, h):
        return self.model.norm(h)

    def exit_logits(self, h):
        return self.lm_head(h)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, inputs_embeds=None,
                labels=None, use_cache=None, logits_to_keep=0, **kwargs):
        # Named like LLaMA's forward: the Trainer keeps only dataset columns that the signature names.
        return self.exit_forward(
            labels=labels, input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            cache=cache, inputs_embeds=inputs_embeds, use_cache=use_cache, logits_to_keep=logits_to_keep, **kwargs)

"""LLaMA-family causal LMs with early-exit training losses: LLaMA, and the families whose decoder layers have
LLaMA's signature and module names (Qwen2: biases on q/k/v; Mistral: sliding-window attention).

Each is HF's class with the same parameter names plus the shared exit machinery of models/modeling_common.py.
What they change against the encoder-decoders: the shared final norm is the model's RMSNorm, the LM head is
unscaled, and (decoder-only) the state at position t predicts label t+1, which the mixin handles for every
causal LM. One adapter (deploying_llama.LlamaAdapter) decodes them all.
"""

from transformers import LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM

from models.deploying_llama import LlamaAdapter
from models.modeling_common import EarlyExitModelMixin


class CausalExitMixin(EarlyExitModelMixin):
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


class EffLlamaForCausalLM(CausalExitMixin, LlamaForCausalLM):
    pass


class EffQwen2ForCausalLM(CausalExitMixin, Qwen2ForCausalLM):
    pass


class EffMistralForCausalLM(CausalExitMixin, MistralForCausalLM):
    pass

"""Decoder-only causal LMs with early-exit training losses: LLaMA, and the families whose decoder layers have
LLaMA's signature and module names (Qwen2: biases on q/k/v; Qwen3: q/k norms per head; Mistral: sliding-window
attention; Phi-3: fused qkv and gate/up projections; Gemma 2 / Gemma 3: scaled embeddings, (1 + w) norms, extra
norms around attention and MLP, soft-capping, sliding layers alternating with global ones).

Each is HF's class with the same parameter names plus the shared exit machinery of models/modeling_common.py.
What they change against the encoder-decoders: the shared final norm is the model's RMSNorm, the LM head is
unscaled (Gemma soft-caps its logits, at every exit as at the last layer), and (decoder-only) the state at
position t predicts label t+1, which the mixin handles for every causal LM. One adapter
(deploying_llama.LlamaAdapter) decodes them all.
"""

from transformers import (Gemma2ForCausalLM, Gemma3ForCausalLM, LlamaForCausalLM, MistralForCausalLM,
                          Phi3ForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)

from models.deploying_llama import LlamaAdapter, soft_cap
from models.modeling_common import EarlyExitModelMixin


class CausalExitMixin(EarlyExitModelMixin):
    adapter_cls = LlamaAdapter

    def exit_norm(self, h):
        return self.model.norm(h)

    def exit_logits(self, h):
        return soft_cap(self.lm_head(h), getattr(self.config, "final_logit_softcapping", None))

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


class EffQwen3ForCausalLM(CausalExitMixin, Qwen3ForCausalLM):
    pass


class EffMistralForCausalLM(CausalExitMixin, MistralForCausalLM):
    pass


class EffPhi3ForCausalLM(CausalExitMixin, Phi3ForCausalLM):
    pass


class EffGemma2ForCausalLM(CausalExitMixin, Gemma2ForCausalLM):
    pass


class EffGemma3ForCausalLM(CausalExitMixin, Gemma3ForCausalLM):
    pass

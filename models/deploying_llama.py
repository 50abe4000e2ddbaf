"""LLaMA-family adapter for the early-exit engine (decoder-only), reusing the loaded HF modules.

Same interface as T5Adapter, with the decoder-only differences (FREE_SPEC.md section 8):
- `start()` prefills the whole prompt through ALL layers (prefill never exits) and returns a Session
  whose `prompt` is the prompt's token list and `first_logits` the last prompt position's logits;
  the engine continues from there;
- RoPE positions are the tokens' TRUE positions, start + arange(n), passed in the span; a stale deep
  layer's span in FREE's parallel pass is rotated at the stacked tokens' own positions, not at that
  layer's cache length or layer 0's;
- `fill_kv` applies RoPE to the propagated keys at the tokens' positions;
- grouped-query attention: K/V have num_key_value_heads heads (HF's attention repeats them);
- the final norm is RMSNorm and the LM head is untied, with no output scale.
"""

from dataclasses import dataclass, field

import torch
from transformers.cache_utils import DynamicCache
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from models.deploying_common import crop_layers, layer_len, span_mask


@dataclass
class Session:
    """Per-sequence decoding state: the caches, the prompt and the logits that predict the first new token."""

    cache: DynamicCache
    prompt: list = field(default_factory=list)
    first_logits: torch.Tensor | None = None

    def cache_len(self, layer: int) -> int:
        return layer_len(self.cache, layer)


@dataclass
class Span:
    start: int
    n: int
    position_ids: torch.Tensor  # (1, n): true positions start .. start + n - 1
    rope: tuple  # (cos, sin) at those positions
    mask: torch.Tensor | None  # additive; explicit because HF's sdpa path assumes a causal span starts at key 0


class LlamaAdapter:
    def __init__(self, model):
        self.model = model
        base = model.model
        self.layers = base.layers
        self.num_layers = len(base.layers)
        self.embed_tokens = base.embed_tokens
        self.norm = base.norm
        self.rotary = base.rotary_emb
        self.lm_head = model.lm_head

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None) -> Session:
        """Prefill: the (unpadded) prompt through the first `depth` layers (default all); one row."""
        if input_ids.shape[0] != 1:
            raise ValueError("LlamaAdapter.start decodes one row at a time")
        if attention_mask is not None:
            input_ids = input_ids[:, attention_mask[0].bool()]
        sess = Session(cache=DynamicCache(), prompt=input_ids[0].tolist())
        span = self.span(0, input_ids.shape[1])
        h = self.embed(input_ids, span)
        for i in range(depth or self.num_layers):
            h = self.layer(sess, i, h, span)
        sess.first_logits = self.logits(h[:, -1:])[0, -1]
        return sess

    def span(self, start: int, n: int, causal: bool = True) -> Span:
        w = self.lm_head.weight
        position_ids, rope = self._rope(start, n)
        return Span(start, n, position_ids, rope, span_mask(start, n, causal, w.dtype, w.device))

    def _rope(self, start: int, n: int):
        w = self.lm_head.weight
        position_ids = torch.arange(start, start + n, device=w.device)[None]
        return position_ids, self.rotary(w, position_ids)  # the tensor gives dtype and device only

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        return self.embed_tokens(ids)  # positions enter through RoPE inside attention

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        return self.layers[i](h, attention_mask=span.mask, position_ids=span.position_ids, cache=sess.cache,
                              use_cache=True, position_embeddings=span.rope)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(h))

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, start: int) -> None:
        """State propagation: layer i's K/V for tokens at positions start.. that skipped it, from the exit state."""
        layer = self.layers[i]
        attn, x = layer.self_attn, layer.input_layernorm(h)
        shape = (*x.shape[:-1], -1, attn.head_dim)
        k = attn.k_proj(x).view(shape).transpose(1, 2)
        v = attn.v_proj(x).view(shape).transpose(1, 2)
        cos, sin = self._rope(start, x.shape[1])[1]
        _, k = apply_rotary_pos_emb(k, k, cos, sin)
        sess.cache.update(k, v, i)

    def crop(self, sess: Session, length: int) -> None:
        crop_layers(sess.cache, length)

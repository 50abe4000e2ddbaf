"""BART adapter for the early-exit engine: how BART computes, layer by layer, reusing the loaded HF modules.

Same interface as T5Adapter. What BART changes:
- learned absolute positions (offset 2 inside HF's module), taken from the span's true positions, so a
  deep layer with a short cache still sees each token at its own position (positions enter at the
  embedding only, so a layer's keys do not depend on position);
- the embedding is scaled (BartScaledWordEmbedding, sqrt(d_model) when config.scale_embedding) and goes
  through `layernorm_embedding`;
- layers are post-LN (each ends in its own LayerNorm), so the exits need no shared final norm; a
  decoder `layer_norm` (mBART-style) is applied when the model has one;
- the LM head is tied to the embeddings and adds `final_logits_bias`;
- BartDecoderLayer returns a tensor, not a tuple.
"""

from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models.deploying_common import crop_layers, layer_len, span_mask


@dataclass
class Session:
    """Per-sequence decoding state: encoder output, its additive mask (None without padding), the caches."""

    enc: torch.Tensor
    enc_mask: torch.Tensor | None
    cache: EncoderDecoderCache

    def cache_len(self, layer: int) -> int:
        return layer_len(self.cache.self_attention_cache, layer)


@dataclass
class Span:
    start: int
    n: int
    positions: torch.Tensor  # true token positions start .. start + n - 1
    mask: torch.Tensor | None  # additive; explicit because HF's sdpa path assumes a causal span starts at key 0


class BartAdapter:
    def __init__(self, model):
        self.model = model
        dec = model.get_decoder()
        self.dec = dec
        self.layers = dec.layers
        self.num_layers = len(dec.layers)
        self.final_norm = getattr(dec, "layer_norm", None)
        self.lm_head = model.lm_head
        self.bias = model.final_logits_bias

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None) -> Session:
        """Encode the source; the decoder starts empty (`depth`, the decoder-only prefill depth, is unused)."""
        enc = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = (1.0 - attention_mask[:, None, None, :].to(enc.dtype)) * torch.finfo(enc.dtype).min
        return Session(enc=enc, enc_mask=mask, cache=EncoderDecoderCache(DynamicCache(), DynamicCache()))

    def span(self, start: int, n: int, causal: bool = True) -> Span:
        w = self.lm_head.weight
        positions = torch.arange(start, start + n, device=w.device)
        return Span(start, n, positions, span_mask(start, n, causal, w.dtype, w.device))

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        h = self.dec.embed_tokens(ids) + self.dec.embed_positions(ids, position_ids=span.positions)
        return self.dec.layernorm_embedding(h)

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        return self.layers[i](h, span.mask, sess.enc, encoder_attention_mask=sess.enc_mask, cache=sess.cache)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.final_norm(h) if self.final_norm is not None else h

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.normed(h)) + self.bias

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, start: int) -> None:
        """State propagation: layer i's K/V for tokens (at positions start..) that skipped it, from the exit state.

        BART's self-attention reads the layer input directly (post-LN) and keys carry no position.
        """
        attn = self.layers[i].self_attn
        shape = (*h.shape[:-1], -1, attn.head_dim)
        k = attn.k_proj(h).view(shape).transpose(1, 2)
        v = attn.v_proj(h).view(shape).transpose(1, 2)
        sess.cache.self_attention_cache.update(k, v, i)

    def crop(self, sess: Session, length: int) -> None:
        crop_layers(sess.cache.self_attention_cache, length)

"""T5 adapter for the early-exit engine: how T5 computes, layer by layer, reusing the loaded HF modules.

The adapter knows nothing about exit policies. Positions are explicit: a span of n tokens whose first
token sits at position `start` of the layer's own cache, so a deep layer with a short cache (FREE's
stale deep layers) gets the true relative positions of the tokens it is given.
"""

from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models.deploying_common import crop_layers, layer_len, span_mask


@dataclass
class Session:
    """Per-sequence decoding state: encoder output and the decoder's caches."""

    enc: torch.Tensor
    cross_bias: torch.Tensor
    cache: EncoderDecoderCache

    def cache_len(self, layer: int) -> int:
        return layer_len(self.cache.self_attention_cache, layer)


@dataclass
class Span:
    start: int
    n: int
    bias: torch.Tensor  # relative position bias for n queries over start + n keys
    mask: torch.Tensor | None  # additive; explicit because HF's sdpa path assumes a causal span starts at key 0


class T5Adapter:
    def __init__(self, model):
        self.model = model
        dec = model.decoder
        self.blocks = dec.block
        self.num_layers = len(dec.block)
        self.norm = dec.final_layer_norm
        self.embed_tokens = dec.embed_tokens
        self.lm_head = model.lm_head
        self.rel_attn = dec.block[0].layer[0].SelfAttention
        self.scale = model.config.d_model**-0.5 if getattr(model.config, "scale_decoder_outputs", False) else None
        self.n_heads = model.config.num_heads
        self._bias = None  # relative-position bias of positions 0..T-1, grown on demand


    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None) -> Session:
        """Encode the source; the decoder starts empty (`depth`, the decoder-only prefill depth, is unused)."""
        enc = self.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        bias = torch.zeros(1, self.n_heads, 1, enc.shape[1], dtype=enc.dtype, device=enc.device)
        if attention_mask is not None and not bool(attention_mask.all()):
            neg = torch.finfo(enc.dtype).min
            bias = bias + (1.0 - attention_mask[:, None, None, :].to(enc.dtype)) * neg
        return Session(enc=enc, cross_bias=bias, cache=EncoderDecoderCache(DynamicCache(), DynamicCache()))

    def span(self, start: int, n: int, causal: bool = True) -> Span:
        # The decoder's bias depends only on key - query, so one table serves every span: rows start..start+n-1
        # of it equal compute_bias(n, start + n, past_seen_tokens=start), without recomputing buckets per step.
        end = start + n
        if self._bias is None or self._bias.shape[-1] < end:
            size = max(end, 2 * (self._bias.shape[-1] if self._bias is not None else 32))
            self._bias = self.rel_attn.compute_bias(size, size, device=self.lm_head.weight.device)
        bias = self._bias[:, :, start:end, :end]
        return Span(start, n, bias, span_mask(start, n, causal, bias.dtype, bias.device))

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        return self.embed_tokens(ids)  # T5 has no absolute positions

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        return self.blocks[i](h, span.mask, span.bias, sess.enc, None, sess.cross_bias, cache=sess.cache)[0]

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        z = self.norm(h)
        return self.lm_head(z * self.scale if self.scale is not None else z)

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, start: int) -> None:
        """State propagation: layer i's K/V for tokens (at positions start..) that skipped it, from the exit state.

        T5 keys carry no position (the relative bias is added to the scores), so `start` is not needed here.
        """
        layer = self.blocks[i].layer[0]
        attn, x = layer.SelfAttention, layer.layer_norm(h)
        shape = (*x.shape[:-1], -1, attn.key_value_proj_dim)
        k = attn.k(x).view(shape).transpose(1, 2)
        v = attn.v(x).view(shape).transpose(1, 2)
        sess.cache.self_attention_cache.update(k, v, i)

    def crop(self, sess: Session, length: int) -> None:
        crop_layers(sess.cache.self_attention_cache, length)

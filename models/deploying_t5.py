"""T5 adapter for the early-exit engine: how T5 computes, layer by layer, reusing the loaded HF modules.

The adapter knows nothing about exit policies. Positions are explicit (see deploying_common): a span gives
each row's tokens their true positions, so a deep layer with a short cache (FREE's stale deep layers) gets the
true relative positions of the tokens it is given.
"""

import torch

from models.deploying_common import Session, Span, encoder_decoder_session, heads, make_span


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
        self._bias = None  # relative-position bias of positions 0..T-1, grown on demand

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None, enc: torch.Tensor | None = None) -> Session:
        """Encode the (padded) batch unless its encoder output `enc` is given; cross-attention K/V of every layer
        once; the decoder starts empty. (`depth`, the decoder-only prefill depth, is unused.)
        """
        if enc is None:
            enc = self.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        attns = [b.layer[1].EncDecAttention for b in self.blocks]
        return encoder_decoder_session(enc, attention_mask, [(a.k, a.v, a.key_value_proj_dim) for a in attns])

    def span(self, starts, n=1, causal: bool = True) -> Span:
        w = self.lm_head.weight
        s = make_span(starts, n, causal, w.dtype, w.device)
        # The decoder's bias depends only on key - query, so one table serves every span: row p of it equals
        # compute_bias for a query at position p, without recomputing buckets per step.
        if self._bias is None or self._bias.shape[-1] < s.end:
            size = max(s.end, 2 * (self._bias.shape[-1] if self._bias is not None else 32))
            self._bias = self.rel_attn.compute_bias(size, size, device=w.device)
        if s.same_start is not None:
            s.extra = self._bias[:, :, s.same_start:s.same_start + s.nmax, :s.end]
        else:
            s.extra = self._bias[0][:, s.positions, :s.end].transpose(0, 1)
        return s

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        return self.embed_tokens(ids)  # T5 has no absolute positions

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        sess.begin(span)
        return self.blocks[i](h, span.mask, span.extra, sess.enc, sess.cross_mask, None, cache=sess.cache)[0]

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        z = self.norm(h)
        return self.lm_head(z * self.scale if self.scale is not None else z)

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """State propagation: layer i's K/V for the span's tokens, which skipped it, from their exit state.

        T5 keys carry no position (the relative bias is added to the scores).
        """
        layer = self.blocks[i].layer[0]
        attn, x = layer.SelfAttention, layer.layer_norm(h)
        sess.begin(span)
        sess.kv.update(heads(attn.k, x, attn.key_value_proj_dim), heads(attn.v, x, attn.key_value_proj_dim), i)
